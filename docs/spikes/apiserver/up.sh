#!/bin/bash
# spike: start etcd + kube-apiserver + kube-controller-manager on loopback; pki already in state/pki
set -euo pipefail
cd "$(dirname "$0")"; S=$PWD/state P=$PWD/state/pki B=$PWD/bin ETCD=${ETCD:-$B/etcd}
read EC EP AP KP < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
echo "$EC $EP $AP $KP" > $S/ports
mkdir -p $S/etcd-data && chmod 700 $S/etcd-data
T0=$(date +%s%N)
$ETCD --name spike --data-dir $S/etcd-data \
  --listen-client-urls http://127.0.0.1:$EC --advertise-client-urls http://127.0.0.1:$EC \
  --listen-peer-urls http://127.0.0.1:$EP --initial-advertise-peer-urls http://127.0.0.1:$EP \
  --initial-cluster spike=http://127.0.0.1:$EP --log-level warn > logs/etcd.log 2>&1 &
echo $! > $S/etcd.pid
until curl -sf http://127.0.0.1:$EC/health >/dev/null; do sleep 0.1; done
T1=$(date +%s%N)
$B/kube-apiserver \
  --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port=$AP \
  --etcd-servers=http://127.0.0.1:$EC \
  --tls-cert-file=$P/apiserver.crt --tls-private-key-file=$P/apiserver.key \
  --client-ca-file=$P/ca.crt \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=PodSecurity \
  --service-account-key-file=$P/sa.pub --service-account-signing-key-file=$P/sa.key \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.0.0.0/24 \
  --endpoint-reconciler-type=none \
  --allow-privileged=true > logs/apiserver.log 2>&1 &
echo $! > $S/apiserver.pid
until curl -sf --cacert $P/ca.crt --cert $P/admin.crt --key $P/admin.key https://127.0.0.1:$AP/readyz >/dev/null 2>&1; do sleep 0.1; done
T2=$(date +%s%N)
K=$S/admin.kubeconfig
kubectl config --kubeconfig=$K set-cluster local --server=https://127.0.0.1:$AP --certificate-authority=$P/ca.crt --embed-certs=true >/dev/null
kubectl config --kubeconfig=$K set-credentials admin --client-certificate=$P/admin.crt --client-key=$P/admin.key --embed-certs=true >/dev/null
kubectl config --kubeconfig=$K set-context local --cluster=local --user=admin >/dev/null
kubectl config --kubeconfig=$K use-context local >/dev/null
if [ -x $B/kube-controller-manager ] && [ -z "${NO_KCM:-}" ]; then
  $B/kube-controller-manager --kubeconfig=$K \
    --bind-address=127.0.0.1 --secure-port=$KP \
    --controllers=serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller \
    --service-account-private-key-file=$P/sa.key --root-ca-file=$P/ca.crt \
    --use-service-account-credentials=false --leader-elect=false > logs/kcm.log 2>&1 &
  echo $! > $S/kcm.pid
fi
echo "etcd ready $(( (T1-T0)/1000000 )) ms; apiserver ready $(( (T2-T1)/1000000 )) ms after etcd"
