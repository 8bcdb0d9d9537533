#!/usr/bin/env node
'use strict';
require('../dist/station/cli/main.js').main(process.argv);
