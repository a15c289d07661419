@echo off
rem Step 5.1: writes workspace/data_dst_aligned_contact_sheet.jpg, a grid of the aligned faces (beside data_dst/, never inside it, so it never becomes a frame).
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" util --input-dir "%WORKSPACE%\data_dst\aligned" --view-aligned %*
pause
