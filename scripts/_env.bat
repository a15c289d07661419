@rem Called by the numbered scripts: sets ROOT, WORKSPACE and PY (installing on first use).
set "ROOT=%~dp0.."
if "%WORKSPACE%"=="" set "WORKSPACE=%ROOT%\workspace"
call "%ROOT%\scripts\setup.bat" requirements.txt || exit /b 1
set "PY=%ROOT%\.venv\Scripts\python.exe"
set "MAIN=%ROOT%\main.py"
