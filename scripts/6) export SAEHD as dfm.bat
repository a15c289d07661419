@echo off
rem Step 6: the SAEHD model in workspace/model as <name>_SAEHD_model.dfm beside it, for DeepFaceLive (asks "Export quantized?").
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" exportdfm --model-dir "%WORKSPACE%\model" --model SAEHD %*
pause
