/**
 * Bundles the Electron shell into dist/electron for packaging (not part of `npm run build`):
 * main.js requires the station from the tsc output next to it (dist/station/...), so that the
 * station's own __dirname-relative paths (PKCS#11 worker, simulator bin) stay what they are;
 * preload.js is one self-contained file (a sandboxed preload cannot require local modules).
 */
const { join, relative, resolve } = require('node:path');
const esbuild = require('esbuild');

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'dist/electron');

/** `../../src/station/x` from electron/main -> `../station/x` from dist/electron. */
const stationFromDist = {
  name: 'station-from-dist',
  setup(build) {
    build.onResolve({ filter: /\/src\// }, (args) => {
      const absolute = resolve(args.resolveDir, args.path);
      const fromSrc = relative(join(ROOT, 'src'), absolute);
      return { path: `../${fromSrc.split('\\').join('/')}`, external: true };
    });
  },
};

function buildElectron() {
  esbuild.buildSync({
    entryPoints: [join(__dirname, 'preload/preload.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: ['node20'],
    external: ['electron'],
    outfile: join(OUT, 'preload.js'),
    logLevel: 'warning',
  });
  return esbuild.build({
    entryPoints: [join(__dirname, 'main/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: ['node20'],
    packages: 'external',
    plugins: [stationFromDist],
    outfile: join(OUT, 'main.js'),
    logLevel: 'warning',
  });
}

module.exports = { buildElectron };

if (require.main === module) buildElectron().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
