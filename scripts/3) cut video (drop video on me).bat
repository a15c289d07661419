@echo off
rem Step 3 (optional): cut a piece of the video given (or dropped) as the first argument to <name>_cut<ext>.
call "%~dp0_env.bat" || exit /b 1
if "%~1"=="" (
  echo Drop a video file on this script.
  pause
  exit /b 1
)
"%PY%" "%MAIN%" videoed cut-video --input-file "%~1"
pause
