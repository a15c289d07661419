@echo off
rem Step 1: delete everything made so far (frames, faces, merged results, model), after asking.
call "%~dp0_env.bat" || exit /b 1
set "ANSWER="
set /p "ANSWER=Delete all frames, faces, merged results and models in %WORKSPACE%? (y/n) [n]: "
if /i not "%ANSWER%"=="y" (
  echo Nothing deleted.
  pause
  exit /b 0
)
if exist "%WORKSPACE%\data_src" rmdir /s /q "%WORKSPACE%\data_src"
if exist "%WORKSPACE%\data_dst" rmdir /s /q "%WORKSPACE%\data_dst"
if exist "%WORKSPACE%\model" rmdir /s /q "%WORKSPACE%\model"
set "ANSWER="
set /p "ANSWER=Also delete the videos %WORKSPACE%\data_src.* and data_dst.*? (y/n) [n]: "
if /i "%ANSWER%"=="y" del /q "%WORKSPACE%\data_src.*" "%WORKSPACE%\data_dst.*" 2>nul
mkdir "%WORKSPACE%\data_src\aligned" "%WORKSPACE%\data_dst\aligned" "%WORKSPACE%\model"
echo Workspace cleared.
pause
