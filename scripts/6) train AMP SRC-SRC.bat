@echo off
rem Step 6 (DeepFaceLab's AMP SRC-SRC): trains AMP with data_src as both face sets, a src-only model to continue on a real pair later.
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" train --training-data-src-dir "%WORKSPACE%\data_src\aligned" --training-data-dst-dir "%WORKSPACE%\data_src\aligned" --model-dir "%WORKSPACE%\model" --model AMP %*
pause
