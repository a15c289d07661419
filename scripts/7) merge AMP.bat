@echo off
rem Step 7: the AMP model in workspace/model swaps the faces of workspace/data_dst into data_dst/merged (+ merged_mask).
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" merge --input-dir "%WORKSPACE%\data_dst" --output-dir "%WORKSPACE%\data_dst\merged" --output-mask-dir "%WORKSPACE%\data_dst\merged_mask" --aligned-dir "%WORKSPACE%\data_dst\aligned" --model-dir "%WORKSPACE%\model" --model AMP %*
pause
