@echo off
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" demo --non-interactive --workspace "%WORKSPACE%" %*
