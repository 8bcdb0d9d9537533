/**
 * Import direction (docs/architecture.md). `npm run build` fails on any violation.
 *   core <- nothing internal
 *   device, hsm, manufacturer-db, label-printer <- core
 *   methods <- core, device
 *   simulator <- core, device/framing, device/protocol, hsm/pkcs11
 *   services <- core
 *   station <- everything above (the composition root)
 * Native modules are imported only by their adapter file.
 */
const leaf = (name) => ({
  name: `${name}-depends-only-on-core`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, '^src/core/'] },
});

const nativeOnlyIn = (module, allowed) => ({
  name: `${module.replace(/[^a-z0-9]+/gi, '-')}-only-in-its-adapter`,
  severity: 'error',
  from: { pathNot: allowed },
  to: { path: `node_modules/${module}/` },
});

module.exports = {
  forbidden: [
    {
      name: 'core-depends-on-nothing-internal',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    leaf('device'),
    leaf('hsm'),
    leaf('manufacturer-db'),
    leaf('label-printer'),
    leaf('services'),
    {
      name: 'methods-depend-on-core-and-device',
      severity: 'error',
      from: { path: '^src/methods/' },
      to: { path: '^src/', pathNot: ['^src/methods/', '^src/core/', '^src/device/'] },
    },
    {
      name: 'simulator-uses-pure-device-parts-and-pkcs11-only',
      severity: 'error',
      from: { path: '^src/simulator/' },
      to: {
        path: '^src/',
        pathNot: ['^src/simulator/', '^src/core/', '^src/device/framing/', '^src/device/protocol/', '^src/hsm/pkcs11/'],
      },
    },
    {
      name: 'only-station-and-bench-import-station',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/station/', '^src/bench/'] },
      to: { path: '^src/station/' },
    },
    {
      name: 'nothing-imports-the-simulator',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/simulator/', '^src/bench/'] },
      to: { path: '^src/simulator/' },
    },
    nativeOnlyIn('pkcs11js', ['^src/hsm/pkcs11/pkcs11-library\\.ts$', '^src/hsm/pkcs11/ckr-names\\.ts$', 'node_modules']),
    nativeOnlyIn('better-sqlite3', ['^src/manufacturer-db/sqlite-database\\.ts$', '^src/services/storage/sqlite-sql-database\\.ts$', 'node_modules']),
    nativeOnlyIn('serialport', ['^src/device/transport/serial-transport\\.ts$', '^src/device/transport/serial-port-list\\.ts$', '^src/simulator/device-port-io\\.ts$', '^src/label-printer/printers/serial-printer\\.ts$', 'node_modules']),
    nativeOnlyIn('node-hid', ['^src/device/transport/hid-transport\\.ts$', '^src/device/transport/hid-device-list\\.ts$', 'node_modules']),
    nativeOnlyIn('@napi-rs/canvas', ['^src/label-printer/renderers/png-label-renderer\\.ts$', 'node_modules']),
    // The GUI (architecture.md): renderer <- station/contract types only; electron/preload <- station/contract only; electron/main <- station.
    {
      name: 'renderer-imports-only-the-contract',
      severity: 'error',
      from: { path: '^renderer/' },
      to: { path: '^(src|electron)/', pathNot: '^src/station/contract/' },
    },
    {
      name: 'renderer-imports-the-contract-as-types-only',
      severity: 'error',
      from: { path: '^renderer/' },
      to: { path: '^src/station/contract/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'renderer-uses-no-node',
      severity: 'error',
      from: { path: '^renderer/src/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'electron-preload-imports-only-the-contract',
      severity: 'error',
      from: { path: '^electron/preload/' },
      to: { path: '^(src|electron|renderer)/', pathNot: ['^electron/preload/', '^src/station/contract/'] },
    },
    {
      name: 'electron-main-imports-only-the-station',
      severity: 'error',
      from: { path: '^electron/main/' },
      to: { path: '^(src|electron|renderer)/', pathNot: ['^electron/main/', '^src/station/', '^electron/electron-surface\\.d\\.ts$'] },
    },
    {
      name: 'nothing-in-src-imports-the-shell',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(renderer|electron)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^dist/' },
  },
};
