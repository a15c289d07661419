@echo off
rem Step 2: frames of workspace/data_src.* into workspace/data_src (asks fps and png/jpg).
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" videoed extract-video --input-file "%WORKSPACE%\data_src.*" --output-dir "%WORKSPACE%\data_src" %*
pause
