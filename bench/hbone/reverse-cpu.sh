#!/bin/bash
# CPU seconds per GB of each HBONE process, with the server reading upstream sockets with
# frame-header headroom (framed) and without (unframed), in interleaved rounds of iperf3.
#   bench/hbone/reverse-cpu.sh <rounds> <seconds> [-R]
# With -R the iperf3 server sends: bytes enter the tunnel at the HBONE server's upstream socket,
# the path framed reads serve. Run `npx tsc -b` first.
R=$1; S=$2; FLAG=$3
cd "$(dirname "$0")/dist"
D=$(mktemp -d)
iperf3 -s -p 46021 >/dev/null 2>&1 & IP=$!
node hbone-pair.js server $D/ca 46022 > $D/s1.log 2>&1 & S1=$!
sleep 2
node hbone-pair.js server $D/ca 46024 unframed > $D/s2.log 2>&1 & S2=$!
node hbone-pair.js client $D/ca 46022 46023=46021 > $D/c1.log 2>&1 & C1=$!
node hbone-pair.js client $D/ca 46024 46025=46021 > $D/c2.log 2>&1 & C2=$!
sleep 3
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
timeout 30 iperf3 -c 127.0.0.1 -p 46023 -t 1 $FLAG >/dev/null; timeout 30 iperf3 -c 127.0.0.1 -p 46025 -t 1 $FLAG > /dev/null
for i in $(seq 1 $R); do
  for m in framed unframed; do
    if [ $m = framed ]; then P=46023; SP=$S1; CP=$C1; else P=46025; SP=$S2; CP=$C2; fi
    s0=$(cpu $SP); c0=$(cpu $CP)
    out=$(timeout 60 iperf3 -c 127.0.0.1 -p $P -t $S $FLAG -J)
    s1=$(cpu $SP); c1=$(cpu $CP)
    bytes=$(echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); e=d['end'].get('sum_received'); print(e['bytes'] if e else 'ERR:'+str(d.get('error')))")
    python3 -c "b=$bytes if '$bytes'[0]!='E' else None
import sys
if b is None: print('$m round $i failed: $bytes'); sys.exit()
gb=b/1e9; print(f'$m round $i: {b*8/1e9/$S:.2f} Gbit/s client {($c1-$c0)/100/gb:.2f} s/GB server {($s1-$s0)/100/gb:.2f} s/GB')"
  done
done
kill $IP $S1 $S2 $C1 $C2
