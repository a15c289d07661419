@echo off
rem Step 9: measures the merge in workspace/data_dst/merged (identity, expression and pose, flicker and jitter, sharpness, seam, the model's src reconstruction) into data_dst/evaluate.json and evaluate.png.
call "%~dp0_env.bat" || exit /b 1
"%PY%" "%MAIN%" evaluate --merged-dir "%WORKSPACE%\data_dst\merged" --dst-dir "%WORKSPACE%\data_dst" --dst-aligned-dir "%WORKSPACE%\data_dst\aligned" --src-aligned-dir "%WORKSPACE%\data_src\aligned" --merged-mask-dir "%WORKSPACE%\data_dst\merged_mask" --model-dir "%WORKSPACE%\model" %*
pause
