@echo off
rem Step 8: workspace/data_dst/merged into workspace/result.mov (lossless png codec) with the fps and sound of data_dst.*; merged frames give a video labelled as synthetic media.
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" videoed video-from-sequence --input-dir "%WORKSPACE%\data_dst\merged" --output-file "%WORKSPACE%\result.mov" --reference-file "%WORKSPACE%\data_dst.*" --include-audio --lossless %*
pause
