@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" train --training-data-src-dir "%WORKSPACE%\data_src\aligned" --training-data-dst-dir "%WORKSPACE%\data_dst\aligned" --model-dir "%WORKSPACE%\model" --model AMP %*
pause
