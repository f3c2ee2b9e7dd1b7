// The libmilter callbacks: translate libmilter's C interface into Session calls and
// Session verdicts into SMFIS_* answers. Wiring only; decisions live in core/tripwire.
#ifndef COMPD_MILTER_CALLBACKS_H_
#define COMPD_MILTER_CALLBACKS_H_

#include <libmilter/mfapi.h>

#include "compd/log.h"
#include "compd/tripwire.h"

namespace compd {

enum class OnError { kAccept, kTempfail };

// What every callback needs. Built once before smfi_main and never changed after, so the
// libmilter threads only read it.
struct MilterContext {
  const Tripwire* tripwire = nullptr;
  const Logger* logger = nullptr;
  OnError on_error = OnError::kAccept;
};

// Must be called once, before smfi_main, with a context that outlives it.
void SetMilterContext(const MilterContext* context);

// The smfiDesc to pass to smfi_register.
smfiDesc MilterDescription();

}  // namespace compd

#endif  // COMPD_MILTER_CALLBACKS_H_
