import { plotLines } from './dist/src/node/plot.js';
import { readFileSync } from 'node:fs';
const [out, title, column, ...runs] = process.argv.slice(2);
const colors = [[200, 40, 40], [30, 90, 200], [40, 160, 60], [200, 120, 20], [120, 40, 160]];
const series = runs.map((r, i) => {
  const [name, dir] = r.split('=');
  const rows = readFileSync(`${dir}/metrics.csv`, 'utf8').trim().split('\n');
  const cols = rows[0].split(',');
  return { name, values: rows.slice(1).map((l) => Number(l.split(',')[cols.indexOf(column)])), color: colors[i] };
});
plotLines(out, title, series);
