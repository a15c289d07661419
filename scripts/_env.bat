@rem Called by the numbered scripts: sets ROOT, WORKSPACE and PY (installing on first use).
set "ROOT=%~dp0.."
if "%WORKSPACE%"=="" set "WORKSPACE=%ROOT%\workspace"
call "%ROOT%\scripts\setup.bat" requirements.txt || exit /b 1
set "PY=%ROOT%\.venv\Scripts\python.exe"
rem the Keras backend setup.bat chose for this machine's GPU, unless VISAGE_BACKEND says otherwise
if not defined VISAGE_BACKEND if exist "%ROOT%\.venv\visage-backend" set /p VISAGE_BACKEND=<"%ROOT%\.venv\visage-backend"
set "MAIN=%ROOT%\main.py"
