// The scratch restore of a DR test (docs/api.md "DR tests"): a schema
// tv_drtest_<job> in the live database holding, per tenant table, one copy of
// the rows a backup restores ("b_<i>") and one of the store's reconstruction
// at the backup's point ("s_<i>"), built from the live tables' columns (all
// but the generated ones), each from its fidelity text when the row image
// has one, else from Debezium's value when that is exact (replay's rule);
// a column neither carries fails the load, naming it. Everything happens in one transaction that is rolled back at the
// end (or when the object dies), so the schema never outlives the test, also
// when the test fails or the process dies. Used by api/'s DR test (api/src/dr_test.cc).
//
// One ScratchRestore per test; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "timevault/core/pg.h"
#include "timevault/core/status.h"
#include "timevault/store/store.h"

namespace timevault::replay {

// How a scratch table compares: rows and an md5 over the row texts in
// primary-key order.
struct TableDigest {
  uint64_t rows = 0;
  std::string md5;
};

// Rows present in one copy and not the other (both ways, as row texts).
struct TableDiff {
  uint64_t differing = 0;
  std::vector<std::string> keys;  // a few primary keys (row text of the key)
};

enum class ScratchSide { kBackup, kStore };

class ScratchRestore {
 public:
  // Connects, begins the transaction, creates the schema and the two empty
  // copies of every table in `tables` (each must be a tenant table of the
  // publication: NotFound naming it otherwise).
  static Result<std::unique_ptr<ScratchRestore>> Begin(const std::string& conninfo, const std::string& tenant_column,
                                                       const std::string& publication, const std::string& job_id,
                                                       const std::vector<std::string>& tables);
  ~ScratchRestore();
  ScratchRestore(const ScratchRestore&) = delete;
  ScratchRestore& operator=(const ScratchRestore&) = delete;

  // The tenant tables of the publication (for a backup of every table).
  const std::vector<std::string>& tables() const;
  const std::string& schema() const;

  // Loads one row image into the given side. Rows of a table outside the
  // scope fail with NotFound; a value Postgres refuses fails the load.
  Status Add(ScratchSide side, const store::Row& row);
  // Ends the open COPY.
  Status Flush();
  // Rows loaded per table into `side` (tables with none are absent).
  const std::map<std::string, uint64_t>& loaded(ScratchSide side) const;

  Result<TableDigest> Digest(ScratchSide side, const std::string& table);
  Result<TableDiff> Diff(const std::string& table, size_t max_keys);

  // Rolls the transaction back: the schema is gone.
  Status Drop();

  struct Impl;

 private:
  explicit ScratchRestore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "tv_drtest_" + the job id lowercased, other characters replaced by '_',
// at most 63 bytes (Postgres' identifier limit).
std::string ScratchSchemaName(const std::string& job_id);

}  // namespace timevault::replay
