@echo off
call "%~dp0setup.bat" requirements-dev.txt || exit /b 1
cd /d "%~dp0.."
.venv\Scripts\python.exe -m core.sample_media || exit /b 1
.venv\Scripts\python.exe -m pytest -q %*
