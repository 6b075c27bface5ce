/**
 * Loaded with `--import` (through NODE_OPTIONS, which refuses --cpu-prof) into the waypoint when
 * BENCH_WAYPOINT_CPU_PROF is set: runs V8's CPU profiler from start and writes a .cpuprofile
 * (readable by Chrome DevTools and by cpu-profile-summary.js) into that directory on SIGUSR2 and
 * at exit.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_WAYPOINT_CPU_PROF;
if (dir) {
  const session = new Session();
  session.connect();
  // The in-thread session answers synchronously, so this also works inside an 'exit' handler.
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (err, result) => {
      if (!err)
        writeFileSync(join(dir, `waypoint-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', write);
  process.once('exit', write);
}
