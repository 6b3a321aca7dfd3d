export { selectCohort, type CohortFilter, type CohortSelection, type RegistryFilter } from './cohort.js';
export { BulkJobRunner, type BulkJobRunnerOptions, type BulkLogger } from './runner.js';
