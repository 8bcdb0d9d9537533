/**
 * Schema migrations, in order. Never edit a migration that has shipped: add the next one.
 * Each runs in its own transaction and is recorded in schema_migrations.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'work orders, devices, certificates, stages, audit chain',
    sql: `
CREATE TABLE work_orders (
  id            TEXT PRIMARY KEY,
  product       TEXT NOT NULL,
  method        TEXT NOT NULL,
  serial_prefix TEXT NOT NULL,
  serial_width  INTEGER NOT NULL,
  serial_first  INTEGER NOT NULL,
  serial_last   INTEGER NOT NULL,
  next_serial   INTEGER NOT NULL,
  owner         TEXT,
  created_at    TEXT NOT NULL
);

CREATE TABLE runs (
  id            TEXT PRIMARY KEY,
  station_id    TEXT NOT NULL,
  work_order_id TEXT NOT NULL REFERENCES work_orders(id),
  started_at    TEXT NOT NULL,
  finished_at   TEXT
);

CREATE TABLE devices (
  serial            TEXT PRIMARY KEY,
  work_order_id     TEXT NOT NULL REFERENCES work_orders(id),
  run_id            TEXT NOT NULL REFERENCES runs(id),
  station_id        TEXT NOT NULL,
  port              TEXT,
  hardware_id       TEXT,
  model             TEXT,
  firmware_version  TEXT,
  method            TEXT NOT NULL,
  key_origin        TEXT,
  public_key_spki   BLOB,
  public_key_sha256 TEXT,
  certificate_serial TEXT,
  dpp_uri           TEXT,
  status            TEXT NOT NULL CHECK (status IN ('assigned', 'issued', 'verified', 'passed', 'failed')),
  error_code        TEXT,
  error_message     TEXT,
  error_stage       TEXT,
  disposition       TEXT CHECK (disposition IS NULL OR disposition IN ('rework', 'scrap')),
  label_state       TEXT NOT NULL DEFAULT 'none' CHECK (label_state IN ('none', 'pending', 'printed', 'failed')),
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE INDEX devices_public_key ON devices(public_key_sha256);
CREATE INDEX devices_hardware_id ON devices(hardware_id);
CREATE INDEX devices_run ON devices(run_id);

CREATE TABLE device_macs (
  mac    TEXT PRIMARY KEY,
  serial TEXT NOT NULL REFERENCES devices(serial)
);
CREATE INDEX device_macs_serial ON device_macs(serial);

CREATE TABLE certificates (
  serial_hex        TEXT PRIMARY KEY,
  device_serial     TEXT NOT NULL REFERENCES devices(serial),
  work_order_id     TEXT NOT NULL,
  der               BLOB NOT NULL,
  public_key_sha256 TEXT NOT NULL,
  issued_at         TEXT NOT NULL,
  status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'void')),
  void_reason       TEXT
);
CREATE INDEX certificates_device ON certificates(device_serial);

CREATE TABLE device_stages (
  serial      TEXT NOT NULL REFERENCES devices(serial),
  run_id      TEXT NOT NULL,
  name        TEXT NOT NULL,
  status      TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  error_code  TEXT,
  PRIMARY KEY (serial, run_id, name)
);

CREATE TABLE audit_events (
  seq        INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  station_id TEXT NOT NULL,
  type       TEXT NOT NULL,
  serial     TEXT,
  data       TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
`,
  },
  {
    version: 2,
    name: 'label prints: every print, retry and reprint, with operator and reason',
    sql: `
ALTER TABLE devices ADD COLUMN label_reason TEXT;
CREATE TABLE label_prints (
  id         INTEGER PRIMARY KEY,
  serial     TEXT NOT NULL REFERENCES devices(serial),
  at         TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('first', 'retry', 'reprint')),
  operator   TEXT,
  reason     TEXT,
  printer    TEXT NOT NULL,
  result     TEXT NOT NULL CHECK (result IN ('printed', 'failed')),
  error_code TEXT
);
CREATE INDEX label_prints_serial ON label_prints(serial);
CREATE INDEX devices_label_pending ON devices(label_state) WHERE label_state = 'pending';
`,
  },
  {
    version: 3,
    name: 'issuance intents (written before the HSM signs), certificates by public key',
    sql: `
CREATE TABLE issuance_intents (
  certificate_serial TEXT PRIMARY KEY,
  device_serial      TEXT NOT NULL REFERENCES devices(serial),
  work_order_id      TEXT NOT NULL,
  station_id         TEXT NOT NULL,
  public_key_sha256  TEXT NOT NULL,
  created_at         TEXT NOT NULL,
  state              TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'issued', 'abandoned', 'interrupted')),
  resolved_at        TEXT
);
CREATE INDEX issuance_intents_pending ON issuance_intents(station_id) WHERE state = 'pending';
CREATE INDEX issuance_intents_device ON issuance_intents(device_serial);
CREATE INDEX issuance_intents_public_key ON issuance_intents(public_key_sha256) WHERE state = 'pending';
CREATE INDEX certificates_public_key ON certificates(public_key_sha256);
`,
  },
  {
    version: 4,
    name: 'prepared keys (method 3): device keys made ahead in the HSM, resting wrapped under the KEK',
    sql: `
CREATE TABLE prepared_keys (
  id                 TEXT PRIMARY KEY,
  work_order_id      TEXT NOT NULL REFERENCES work_orders(id),
  serial             TEXT NOT NULL UNIQUE REFERENCES devices(serial),
  origin             TEXT NOT NULL CHECK (origin IN ('prepared', 'at-station')),
  prepare_run_id     TEXT NOT NULL REFERENCES runs(id),
  spki               BLOB NOT NULL,
  public_key_sha256  TEXT NOT NULL UNIQUE,
  kek_label          TEXT NOT NULL,
  wrapped_key        BLOB,
  certificate_serial TEXT,
  state              TEXT NOT NULL CHECK (state IN ('preparing', 'available', 'reserved', 'consumed', 'burned')),
  reserved_for       TEXT,
  reserved_port      TEXT,
  reserved_run_id    TEXT,
  reserved_at        TEXT,
  injected_at        TEXT,
  confirmed_at       TEXT,
  consumed_at        TEXT,
  burned_at          TEXT,
  burn_reason        TEXT,
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL,
  CHECK ((state IN ('consumed', 'burned')) = (wrapped_key IS NULL)),
  CHECK (state <> 'reserved' OR reserved_for IS NOT NULL)
);
CREATE INDEX prepared_keys_available ON prepared_keys(work_order_id, serial) WHERE state = 'available';
CREATE INDEX prepared_keys_reserved ON prepared_keys(work_order_id, reserved_for) WHERE state = 'reserved';
CREATE INDEX prepared_keys_open ON prepared_keys(state) WHERE state IN ('preparing', 'reserved');
-- A key is offered once: nothing goes back to preparing or available, and consumed and burned are final.
CREATE TRIGGER prepared_keys_forward_only BEFORE UPDATE OF state ON prepared_keys
WHEN NEW.state <> OLD.state AND (
  NEW.state = 'preparing'
  OR (NEW.state = 'available' AND OLD.state <> 'preparing')
  OR OLD.state IN ('consumed', 'burned')
)
BEGIN SELECT RAISE(ABORT, 'a prepared key never goes back: reserved, consumed and burned keys are not offered again'); END;
CREATE TRIGGER prepared_keys_no_delete BEFORE DELETE ON prepared_keys BEGIN SELECT RAISE(ABORT, 'prepared key rows are kept (their blob is deleted, not the row)'); END;
`,
  },
  {
    version: 7,
    name: 'records and sync: device facts, serial and MAC blocks, signed records, outbox, sync target state',
    sql: `
ALTER TABLE devices ADD COLUMN se_serial TEXT;
ALTER TABLE devices ADD COLUMN chip_id TEXT;
ALTER TABLE devices ADD COLUMN prepared_key_id TEXT;
ALTER TABLE devices ADD COLUMN manifest_entry_id TEXT;
ALTER TABLE devices ADD COLUMN owner TEXT;
ALTER TABLE devices ADD COLUMN operator TEXT;
ALTER TABLE devices ADD COLUMN record_sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN recorded_at TEXT;
ALTER TABLE devices ADD COLUMN passed_at TEXT;
ALTER TABLE devices ADD COLUMN failed_at TEXT;
ALTER TABLE devices ADD COLUMN voided_at TEXT;
ALTER TABLE devices ADD COLUMN void_reason TEXT;
CREATE INDEX devices_se_serial ON devices(se_serial) WHERE se_serial IS NOT NULL;
CREATE INDEX devices_work_order ON devices(work_order_id);
CREATE INDEX devices_owner ON devices(owner) WHERE owner IS NOT NULL;

CREATE TABLE serial_blocks (
  id            INTEGER PRIMARY KEY,
  station_id    TEXT NOT NULL,
  work_order_id TEXT,
  prefix        TEXT NOT NULL,
  first         INTEGER NOT NULL,
  last          INTEGER NOT NULL CHECK (last >= first),
  source        TEXT NOT NULL CHECK (source IN ('work-order', 'import')),
  created_at    TEXT NOT NULL
);
CREATE INDEX serial_blocks_prefix ON serial_blocks(prefix, first);
CREATE TRIGGER serial_blocks_no_overlap BEFORE INSERT ON serial_blocks
WHEN EXISTS (SELECT 1 FROM serial_blocks b WHERE b.prefix = NEW.prefix AND b.first <= NEW.last AND NEW.first <= b.last)
BEGIN SELECT RAISE(ABORT, 'serial block overlaps a block already assigned'); END;
CREATE TRIGGER serial_blocks_no_update BEFORE UPDATE OF prefix, first, station_id ON serial_blocks BEGIN SELECT RAISE(ABORT, 'a serial block only grows at its end'); END;
CREATE TRIGGER serial_blocks_no_delete BEFORE DELETE ON serial_blocks BEGIN SELECT RAISE(ABORT, 'serial blocks are never deleted'); END;

CREATE TABLE mac_blocks (
  id         INTEGER PRIMARY KEY,
  station_id TEXT NOT NULL,
  product    TEXT,
  first      INTEGER NOT NULL,
  last       INTEGER NOT NULL CHECK (last >= first),
  next       INTEGER NOT NULL,
  source     TEXT NOT NULL CHECK (source IN ('import')),
  created_at TEXT NOT NULL
);
CREATE TRIGGER mac_blocks_no_overlap BEFORE INSERT ON mac_blocks
WHEN EXISTS (SELECT 1 FROM mac_blocks b WHERE b.first <= NEW.last AND NEW.first <= b.last)
BEGIN SELECT RAISE(ABORT, 'MAC block overlaps a block already assigned'); END;
CREATE TRIGGER mac_blocks_next_forward BEFORE UPDATE OF next ON mac_blocks WHEN NEW.next < OLD.next
BEGIN SELECT RAISE(ABORT, 'a MAC block never gives an address twice'); END;
CREATE TRIGGER mac_blocks_no_delete BEFORE DELETE ON mac_blocks BEGIN SELECT RAISE(ABORT, 'MAC blocks are never deleted'); END;

CREATE TABLE device_records (
  id                  INTEGER PRIMARY KEY,
  serial              TEXT NOT NULL REFERENCES devices(serial),
  sequence            INTEGER NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('active', 'void')),
  idempotency_key     TEXT NOT NULL UNIQUE,
  payload             TEXT NOT NULL,
  signature           TEXT,
  station_certificate TEXT,
  created_at          TEXT NOT NULL,
  UNIQUE (serial, sequence)
);
CREATE TRIGGER device_records_no_update BEFORE UPDATE ON device_records BEGIN SELECT RAISE(ABORT, 'signed records are immutable'); END;

CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  target          TEXT NOT NULL CHECK (target IN ('masa', 'supply-chain')),
  record_id       INTEGER NOT NULL REFERENCES device_records(id),
  idempotency_key TEXT NOT NULL,
  device_serial   TEXT NOT NULL,
  sequence        INTEGER NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead-lettered', 'dropped')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  delivered_at    TEXT,
  UNIQUE (target, idempotency_key)
);
CREATE INDEX outbox_due ON outbox(target, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_device ON outbox(device_serial, target, sequence);
CREATE INDEX outbox_dead ON outbox(target, id) WHERE state = 'dead-lettered';

CREATE TABLE sync_targets (
  target      TEXT PRIMARY KEY CHECK (target IN ('masa', 'supply-chain')),
  state       TEXT NOT NULL CHECK (state IN ('active', 'paused')),
  alert       TEXT,
  since       TEXT NOT NULL,
  last_success_at TEXT
);
`,
  },
  {
    version: 8,
    name: 'station users: operators and supervisors, scrypt PIN hashes, lockout',
    sql: `
CREATE TABLE users (
  username        TEXT PRIMARY KEY,
  display_name    TEXT NOT NULL,
  role            TEXT NOT NULL CHECK (role IN ('operator', 'supervisor')),
  pin_hash        BLOB NOT NULL,
  pin_salt        BLOB NOT NULL,
  pin_params      TEXT NOT NULL,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  locked_until    TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);
`,
  },
  {
    version: 6,
    name: 'method 5 seeds: sealed by the HSM at rest, bound to the device that took the chip',
    sql: `
CREATE TABLE seeds (
  chip_id           TEXT PRIMARY KEY,
  seed_sealed       BLOB NOT NULL,
  public_key_sha256 TEXT NOT NULL,
  file_sha256       TEXT NOT NULL,
  recipient_key_id  TEXT NOT NULL,
  vendor            TEXT NOT NULL,
  lot               TEXT NOT NULL,
  imported_at       TEXT NOT NULL,
  state             TEXT NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'used')),
  bound_serial      TEXT,
  bound_at          TEXT,
  used_at           TEXT
);
CREATE INDEX seeds_bound_serial ON seeds(bound_serial) WHERE bound_serial IS NOT NULL;
CREATE INDEX seeds_file ON seeds(file_sha256);
`,
  },
  {
    version: 5,
    name: 'method 4: verified SE manifest entries and the device each SE is bound to',
    sql: `
CREATE TABLE se_manifest_entries (
  unique_id         TEXT PRIMARY KEY,
  se_serial         TEXT NOT NULL UNIQUE,
  key_id            TEXT NOT NULL,
  public_key_spki   BLOB NOT NULL,
  public_key_sha256 TEXT NOT NULL UNIQUE,
  certificate_der   BLOB NOT NULL,
  chain_der         BLOB NOT NULL,
  model             TEXT,
  part_number       TEXT,
  group_id          TEXT,
  provisioned_at    TEXT,
  signer_sha256     TEXT NOT NULL,
  manifest_sha256   TEXT NOT NULL,
  imported_at       TEXT NOT NULL,
  bound_serial      TEXT,
  bound_at          TEXT,
  bound_station_id  TEXT
);
CREATE INDEX se_manifest_entries_bound ON se_manifest_entries(bound_serial) WHERE bound_serial IS NOT NULL;
CREATE INDEX se_manifest_entries_manifest ON se_manifest_entries(manifest_sha256);
`,
  },
];
