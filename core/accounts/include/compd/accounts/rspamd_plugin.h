// rspamd plugin: builds rspamd's compd_recorder.lua from its template
// (rspamd-conf/plugins.d/compd_recorder.lua.in) at build time, filling in what it must share
// with the Recorder: the record script itself (record.lua) and the names of the keys and
// arguments the script takes (RecordKeys, RecordLayoutArgs, from compd/base/keys.h). So the
// plugin spells no key name and carries no copy of the script: a hit rspamd records runs
// the Recorder's code on the Recorder's keys.
//
// Pure functions: safe from any thread.
#ifndef COMPD_ACCOUNTS_RSPAMD_PLUGIN_H_
#define COMPD_ACCOUNTS_RSPAMD_PLUGIN_H_

#include <string>
#include <string_view>

#include "compd/base/status.h"

namespace compd {

// The line of the template that the generated code replaces.
inline constexpr std::string_view kRspamdPluginMarker = "--@COMPD_RECORD@--";

// Lua defining `local compd_record` with
//   script               the record script's text
//   keys(p, a, id)       its KEYS for event `id` under prefix `p`; `a` the AccountKey of
//                        the event's account, '' for none
//   layout(p)            its last arguments (RecordLayoutArgs)
std::string RspamdRecordModule();

// The plugin: `tmpl` with its marker line replaced by RspamdRecordModule(). kInvalid when
// the marker is not there exactly once.
Status BuildRspamdPlugin(std::string_view tmpl, std::string* out);

}  // namespace compd

#endif  // COMPD_ACCOUNTS_RSPAMD_PLUGIN_H_
