@echo off
rem Step 6: the AMP model in workspace/model as <name>_AMP_model.dfm beside it, for DeepFaceLive (asks "Export quantized?").
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" exportdfm --model-dir "%WORKSPACE%\model" --model AMP %*
pause
