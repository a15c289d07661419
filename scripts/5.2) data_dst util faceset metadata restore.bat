@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" util --input-dir "%WORKSPACE%\data_dst\aligned" --restore-faceset-metadata %*
pause
