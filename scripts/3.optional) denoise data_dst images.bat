@echo off
rem Step 3 (optional): denoise the frames in workspace/data_dst in place (asks the strength).
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" videoed denoise-image-sequence --input-dir "%WORKSPACE%\data_dst" %*
pause
