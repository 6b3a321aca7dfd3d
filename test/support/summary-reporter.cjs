// Mocha's spec reporter, ending with one plain line "N passed, N failed, N skipped" (what `npm test`
// and .ci/run end with; mocha's exit status stays non-zero when anything failed). The same line is
// also written to the file KAKUIN_TEST_SUMMARY names, so .ci/run can print it last whatever npm adds.
'use strict';
const fs = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => { passed++; });
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => { failed++; });
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, () => { skipped++; });
    // Registered after Spec's own end handler, so the line comes after its epilogue (failures listed).
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const line = `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
      process.stdout.write(`\n${line}`);
      if (process.env.KAKUIN_TEST_SUMMARY) fs.writeFileSync(process.env.KAKUIN_TEST_SUMMARY, line);
    });
  }
}
module.exports = SummaryReporter;
