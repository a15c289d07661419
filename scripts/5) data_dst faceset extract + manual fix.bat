@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" extract --input-dir "%WORKSPACE%\data_dst" --output-dir "%WORKSPACE%\data_dst\aligned" --detector s3fd --manual-fix --output-debug %*
pause
