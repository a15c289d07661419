@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" xseg apply --input-dir "%WORKSPACE%\data_dst\aligned" --model-dir "%WORKSPACE%\model" %*
pause
