@echo off
rem Creates .venv and installs the pinned requirements (Windows).
setlocal
set "ROOT=%~dp0.."
set "REQ=%ROOT%\%~1"
if "%~1"=="" set "REQ=%ROOT%\requirements.txt"
if not exist "%ROOT%\.venv\Scripts\python.exe" (
  echo Creating virtual environment in .venv ...
  py -3.11 -m venv "%ROOT%\.venv" || python -m venv "%ROOT%\.venv" || exit /b 1
)
"%ROOT%\.venv\Scripts\python.exe" -m pip install --quiet -r "%REQ%" || exit /b 1
endlocal
