#!/usr/bin/env bash
# Step 1: delete everything made so far (frames, faces, merged results, model), after asking.
set -e
source "$(dirname "$0")/_env.sh"
answer=""
read -r -p "Delete all frames, faces, merged results and models in $WORKSPACE? (y/n) [n]: " answer || true
case "$answer" in
  y|Y|yes|YES) ;;
  *) echo "Nothing deleted."; exit 0 ;;
esac
rm -rf "$WORKSPACE/data_src" "$WORKSPACE/data_dst" "$WORKSPACE/model"
answer=""
read -r -p "Also delete the videos $WORKSPACE/data_src.* and data_dst.*? (y/n) [n]: " answer || true
case "$answer" in
  y|Y|yes|YES) rm -f "$WORKSPACE"/data_src.* "$WORKSPACE"/data_dst.* ;;
esac
mkdir -p "$WORKSPACE/data_src/aligned" "$WORKSPACE/data_dst/aligned" "$WORKSPACE/model"
echo "Workspace cleared."
