@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" xseg generic-apply --input-dir "%WORKSPACE%\data_dst\aligned" %*
pause
