@echo off
rem Step 3: every frame of workspace/data_dst.* into workspace/data_dst (asks png/jpg).
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" videoed extract-video --input-file "%WORKSPACE%\data_dst.*" --output-dir "%WORKSPACE%\data_dst" --fps 0 %*
pause
