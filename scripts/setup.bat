@echo off
rem Creates .venv with Python 3.11 or newer and installs the pinned requirements when they changed (Windows).
rem The interpreter: %PYTHON% if set, else py -3.13, py -3.12, py -3.11, python (the first with venv that is
rem new enough). "setup.bat --find-python" prints the one it would use and exits.
rem "--gpu nvidia|amd|apple|none" adds that vendor's GPU build (asked once, remembered in .venv), as setup.sh does.
rem "--dry-run" prints the venv and pip commands it would run, and runs and writes nothing.
setlocal
rem ROOT first: shift also moves %0
set "ROOT=%~dp0.."
set "GPU="
set "ARG1="
set "RUN="
set "DRY="
:args
if "%~1"=="" goto args_done
rem cmd splits "--gpu=nvidia" at the "=", so both spellings arrive here as two arguments
if /i "%~1"=="--gpu" (set "GPU=%~2" & shift & shift & goto args)
if /i "%~1"=="--dry-run" (set "RUN=echo" & set "DRY=1" & shift & goto args)
if not defined ARG1 set "ARG1=%~1"
shift
goto args
:args_done
set "VPY=%ROOT%\.venv\Scripts\python.exe"
set "CHECK=import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"
if not "%ARG1%"=="--find-python" goto install
call :find_python || exit /b 1
echo %PY%
exit /b 0

:install
set "REQ=%ROOT%\%ARG1%"
if "%ARG1%"=="" set "REQ=%ROOT%\requirements.txt"
if exist "%VPY%" goto venv_ready
call :find_python || exit /b 1
if not defined DRY echo Creating virtual environment in .venv with %PY% ...
%RUN% %PY% -m venv "%ROOT%\.venv" || exit /b 1
:venv_ready
rem The GPU vendor: --gpu, else the one remembered, else asked once; none otherwise.
set "GPU_FILE=%ROOT%\.venv\visage-gpu"
if not defined GPU if exist "%GPU_FILE%" set /p GPU=<"%GPU_FILE%"
if not defined GPU if not defined DRY set /p "GPU=Which GPU trains here? nvidia / amd / apple / none [none]: "
if not defined GPU set "GPU=none"
set "KNOWN="
for %%G in (nvidia amd apple none) do if "%GPU%"=="%%G" set "KNOWN=1"
if not defined KNOWN (
  echo --gpu must be nvidia, amd, apple or none, not '%GPU%'>&2
  exit /b 2
)
if not defined DRY (echo %GPU%)>"%GPU_FILE%"
rem What a GPU vendor gets on Windows on top of requirements.txt, and the Keras backend it trains with (README
rem "GPU"). TensorFlow has no GPU build on Windows since 2.11, so NVIDIA gets PyTorch's CUDA build.
set "TORCH="
for /f "tokens=2 delims==" %%V in ('findstr /b "torch==" "%ROOT%\requirements-dev.txt"') do set "TORCH=%%V"
set "BACKEND=tensorflow"
set "EXTRA="
if "%GPU%"=="nvidia" (set "BACKEND=torch" & set "EXTRA=torch==%TORCH% --index-url https://download.pytorch.org/whl/cu130")
if "%GPU%"=="amd" (echo no GPU build of Visage's backends for amd on Windows; training will use the CPU ^(see README "GPU"^)>&2)
if "%GPU%"=="apple" (echo no GPU build of Visage's backends for apple on Windows; training will use the CPU ^(see README "GPU"^)>&2)
if not defined DRY (echo %BACKEND%)>"%ROOT%\.venv\visage-backend"
if defined DRY echo # --gpu %GPU% on Windows: the Keras backend is %BACKEND% (remembered in .venv\visage-backend)
rem pip runs only when requirements*.txt or the GPU build changed since the last install (a hash stamp, as setup.sh keeps).
for %%R in ("%REQ%") do set "STAMP=%ROOT%\.venv\.installed-%%~nxR"
set "HASH="
if exist "%VPY%" for /f "delims=" %%H in ('call "%VPY%" -c "import glob, hashlib, os; print(hashlib.sha256(b''.join(open(f, 'rb').read() for f in sorted(glob.glob(os.path.join(os.environ['ROOT'], 'requirements*.txt'))) + os.environ.get('EXTRA', '').encode()).hexdigest())"') do set "HASH=%%H"
set "OLD="
if exist "%STAMP%" set /p OLD=<"%STAMP%"
if defined HASH if "%OLD%"=="%HASH%" goto done
if not defined DRY echo Installing dependencies from %REQ% ...
%RUN% "%VPY%" -m pip install --quiet --upgrade pip || exit /b 1
%RUN% "%VPY%" -m pip install --quiet -r "%REQ%" || exit /b 1
if defined EXTRA if not defined DRY echo Installing the %GPU% GPU build: %EXTRA% ...
if defined EXTRA %RUN% "%VPY%" -m pip install --quiet %EXTRA% || exit /b 1
if not defined DRY if defined HASH (echo %HASH%)>"%STAMP%"
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
