@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" xseg remove-labels --input-dir "%WORKSPACE%\data_src\aligned" %*
pause
