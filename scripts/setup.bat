@echo off
rem Creates .venv with Python 3.11 or newer and installs the pinned requirements when they changed (Windows).
rem The interpreter: %PYTHON% if set, else py -3.13, py -3.12, py -3.11, python (the first with venv that is
rem new enough). "setup.bat --find-python" prints the one it would use and exits.
setlocal
set "ROOT=%~dp0.."
set "VPY=%ROOT%\.venv\Scripts\python.exe"
set "CHECK=import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"
if not "%~1"=="--find-python" goto install
call :find_python || exit /b 1
echo %PY%
exit /b 0

:install
set "REQ=%ROOT%\%~1"
if "%~1"=="" set "REQ=%ROOT%\requirements.txt"
if exist "%VPY%" goto venv_ready
call :find_python || exit /b 1
echo Creating virtual environment in .venv with %PY% ...
%PY% -m venv "%ROOT%\.venv" || exit /b 1
:venv_ready
rem pip runs only when requirements*.txt changed since the last install (a hash stamp, as setup.sh keeps).
for %%R in ("%REQ%") do set "STAMP=%ROOT%\.venv\.installed-%%~nxR"
set "HASH="
for /f "delims=" %%H in ('call "%VPY%" -c "import glob, hashlib, os; print(hashlib.sha256(b''.join(open(f, 'rb').read() for f in sorted(glob.glob(os.path.join(os.environ['ROOT'], 'requirements*.txt'))))).hexdigest())"') do set "HASH=%%H"
set "OLD="
if exist "%STAMP%" set /p OLD=<"%STAMP%"
if defined HASH if "%OLD%"=="%HASH%" goto done
echo Installing dependencies from %REQ% ...
"%VPY%" -m pip install --quiet --upgrade pip || exit /b 1
"%VPY%" -m pip install --quiet -r "%REQ%" || exit /b 1
if defined HASH (echo %HASH%)>"%STAMP%"
:done
endlocal
exit /b 0

:find_python
rem Sets PY to the interpreter, or prints one line saying what to install and fails.
if not defined PYTHON goto try_versions
"%PYTHON%" -c "%CHECK%" >nul 2>&1 && (set PY="%PYTHON%") && exit /b 0
echo Visage needs Python 3.11 or newer with its venv module; PYTHON=%PYTHON% is not. Install Python 3.11 or newer from https://www.python.org/downloads/ and set PYTHON to its python.exe
exit /b 1
:try_versions
for %%V in (3.13 3.12 3.11) do py -%%V -c "%CHECK%" >nul 2>&1 && (set "PY=py -%%V") && exit /b 0
python -c "%CHECK%" >nul 2>&1 && (set "PY=python") && exit /b 0
echo Visage needs Python 3.11 or newer; neither "py -3.11" nor "python" is one. Install Python 3.11 or newer from https://www.python.org/downloads/ (tick "Add python.exe to PATH"), or set PYTHON=C:\path\to\python.exe
exit /b 1
