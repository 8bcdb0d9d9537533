/**
 * Builds the operator GUI into dist/renderer: one bundle (esbuild, no inline code), the page
 * and its stylesheet. `npm run build:renderer`; the GUI test calls buildRenderer() itself.
 */
const { copyFileSync, mkdirSync } = require('node:fs');
const { join, resolve } = require('node:path');
const esbuild = require('esbuild');

const ROOT = resolve(__dirname, '..');

function buildRenderer(outDir = join(ROOT, 'dist/renderer')) {
  mkdirSync(outDir, { recursive: true });
  esbuild.buildSync({
    entryPoints: [join(__dirname, 'src/main.ts')],
    bundle: true,
    format: 'iife',
    target: ['chrome120'],
    outfile: join(outDir, 'app.js'),
    tsconfig: join(__dirname, 'tsconfig.json'),
    logLevel: 'warning',
    legalComments: 'none',
  });
  copyFileSync(join(__dirname, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(__dirname, 'app.css'), join(outDir, 'app.css'));
  return outDir;
}

module.exports = { buildRenderer };

if (require.main === module) buildRenderer(process.argv[2] ? resolve(process.argv[2]) : undefined);
