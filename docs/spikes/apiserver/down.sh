#!/bin/bash
# spike: stop what up.sh started (by pid file), then optionally remove state
cd "$(dirname "$0")"; S=$PWD/state
for c in kcm apiserver etcd; do
  f=$S/$c.pid; [ -f $f ] || continue; p=$(cat $f)
  if kill $p 2>/dev/null; then for i in $(seq 1 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; kill -0 $p 2>/dev/null && kill -9 $p; fi
  rm -f $f
done
[ "${1:-}" = --purge ] && rm -rf $S/etcd-data $S/admin.kubeconfig $S/ports
true
