import { describe, expect, it } from 'vitest';
import { parsePrometheusText, tcpTrafficRows, tcpTrafficTable } from './tcp-traffic-table.js';

const L = (reporter: string, src: string, dst: string, extra = '') =>
  `reporter="${reporter}",source_workload="${src}",source_workload_namespace="demo",destination_workload="${dst}",destination_workload_namespace="demo"${extra}`;

describe('metrics: Prometheus text to a traffic table', () => {
  it('parses samples with escaped label values and timestamps; skips comments and malformed lines', () => {
    const text = [
      '# HELP istio_tcp_connections_opened_total TCP connections opened',
      '# TYPE istio_tcp_connections_opened_total counter',
      'istio_tcp_connections_opened_total{a="x\\"y",b="back\\\\slash",c="l1\\nl2"} 3 1700000000000',
      'up 1',
      'broken{a="x} 2',
      'nolabels{} 4',
      'not a sample',
      'nan_value{a="b"} NaN',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      {
        name: 'istio_tcp_connections_opened_total',
        labels: { a: 'x"y', b: 'back\\slash', c: 'l1\nl2' },
        value: 3,
      },
      { name: 'up', labels: {}, value: 1 },
      { name: 'nolabels', labels: {}, value: 4 },
    ]);
  });

  it('sums series over the labels not shown, per reporter, source and destination', () => {
    const text = [
      `istio_tcp_connections_opened_total{${L('source', 'sleep', 'echo-0', ',response_flags="-"')}} 2`,
      `istio_tcp_connections_opened_total{${L('source', 'sleep', 'echo-0', ',response_flags="UF"')}} 1`,
      `istio_tcp_connections_closed_total{${L('source', 'sleep', 'echo-0')}} 3`,
      `istio_tcp_sent_bytes_total{${L('source', 'sleep', 'echo-0')}} 100`,
      `istio_tcp_received_bytes_total{${L('source', 'sleep', 'echo-0')}} 50`,
      `istio_tcp_connections_opened_total{${L('destination', 'sleep', 'echo-0')}} 3`,
      'istio_tcp_connections_opened_total{reporter="destination",source_workload="unknown",source_workload_namespace="unknown",destination_workload="echo-0",destination_workload_namespace="demo"} 1',
      `istio_requests_total{${L('source', 'sleep', 'echo-0')}} 9`,
    ].join('\n');
    const rows = tcpTrafficRows(parsePrometheusText(text));
    expect(rows).toEqual([
      {
        reporter: 'destination',
        source: 'demo/sleep',
        destination: 'demo/echo-0',
        opened: 3,
        closed: 0,
        sent: 0,
        received: 0,
      },
      {
        reporter: 'destination',
        source: 'unknown',
        destination: 'demo/echo-0',
        opened: 1,
        closed: 0,
        sent: 0,
        received: 0,
      },
      {
        reporter: 'source',
        source: 'demo/sleep',
        destination: 'demo/echo-0',
        opened: 3,
        closed: 3,
        sent: 100,
        received: 50,
      },
    ]);
    expect(
      tcpTrafficTable([
        { node: 'n0', rows },
        { node: 'n1', rows: [] },
      ]),
    ).toBe(
      [
        'NODE   REPORTER      SOURCE       DESTINATION   OPENED   CLOSED   BYTES SENT   BYTES RECEIVED',
        'n0     destination   demo/sleep   demo/echo-0   3        0        0            0',
        'n0     destination   unknown      demo/echo-0   1        0        0            0',
        'n0     source        demo/sleep   demo/echo-0   3        3        100          50',
        'n1     -             -            -             0        0        0            0',
        '',
      ].join('\n'),
    );
  });
});
