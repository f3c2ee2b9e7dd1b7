// The libmilter callbacks: translate libmilter's C interface into Session calls and
// Session verdicts into SMFIS_* answers. Wiring only; decisions live in core/tripwire.
#ifndef COMPD_MILTER_CALLBACKS_H_
#define COMPD_MILTER_CALLBACKS_H_

#include <libmilter/mfapi.h>

#include <cstddef>
#include <mutex>

#include "compd/base/log.h"
#include "compd/mta/tripwire.h"

namespace compd {

enum class OnError { kAccept, kTempfail };

// What every callback needs. Built once before smfi_main and never changed after, so the
// libmilter threads only read it.
struct MilterContext {
  const Tripwire* tripwire = nullptr;
  const Logger* logger = nullptr;
  OnError on_error = OnError::kAccept;
  // Connections libmilter has open with us: the one thing here that changes, under its
  // mutex. Needed at shutdown, because libmilter abandons idle connections without
  // calling close once it is told to stop.
  mutable std::mutex connections_mu;
  mutable struct Connection* connections = nullptr;  // a list through Connection::next
  mutable size_t open_connections = 0;
};

// Must be called once, before smfi_main, with a context that outlives it.
void SetMilterContext(const MilterContext* context);

// The smfiDesc to pass to smfi_register.
smfiDesc MilterDescription();

// After smfi_main returned: connections still open.
size_t OpenConnections(const MilterContext& context);
// Hands the pending events of every connection still open to the recorder (each under its
// connection's lock, so a callback still running finishes first). Returns how many.
size_t FlushOpenConnections(const MilterContext& context);

}  // namespace compd

#endif  // COMPD_MILTER_CALLBACKS_H_
