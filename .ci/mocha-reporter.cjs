// Mocha's spec reporter, plus a plain "N passed, N failed, N skipped" summary written to the file
// named by KAKUIN_TEST_SUMMARY (so .ci/run can print it as its last line).
'use strict';
const fs = require('node:fs');
const Mocha = require('mocha');

class CiReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => { passed++; });
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => { failed++; });
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, () => { skipped++; });
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const line = `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
      if (process.env.KAKUIN_TEST_SUMMARY) fs.writeFileSync(process.env.KAKUIN_TEST_SUMMARY, line);
    });
  }
}
module.exports = CiReporter;
