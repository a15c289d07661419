@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" extract --input-dir "%WORKSPACE%\data_src" --output-dir "%WORKSPACE%\data_src\aligned" --detector manual %*
pause
