/**
 * `npm run package`: builds the station and the Electron shell, then runs electron-builder for
 * Linux (AppImage, deb) and Windows (NSIS). Needs network access (Electron and electron-builder
 * are downloaded: npm's electron package fetches its binary, electron-builder fetches Electron
 * for each target). It cannot run on the reference machine (pitfalls.md 18; docs/packaging.md).
 */
const { execFileSync } = require('node:child_process');
const { resolve } = require('node:path');
const { buildElectron } = require('./build');

const ROOT = resolve(__dirname, '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });

async function main() {
  const targets = process.argv.slice(2);
  run('npm', ['run', '--silent', 'build']);
  await buildElectron();
  run('npx', ['--yes', 'electron-builder@26', '--config', 'electron/electron-builder.yml', ...(targets.length ? targets : ['--linux', 'AppImage', 'deb', '--win', 'nsis'])]);
}

main().catch((err) => {
  process.stderr.write(`package: ${err.message}\n`);
  process.exit(1);
});
