// Expand the recurring VEVENT of an .ics read on stdin with ICAL.js, the engine Thunderbird
// uses, and print every occurrence as {"recurrence_id", "start", "end"} in UTC (JSON).
//
// Why: icalendar and recurring_ical_events share Python's zoneinfo, so they cannot tell whether
// the VTIMEZONE we write is right. ICAL.js reads only the VTIMEZONE in the file (node has no
// zone database of its own), so its instants are what a Thunderbird user would see.
//
// Usage: node tests/js/expand.mjs [max-occurrences] < invite.ics
import ICAL from "ical.js";
import { readFileSync } from "node:fs";

const limit = Number(process.argv[2] ?? 500);

function utc(time) {
  return time.toJSDate().toISOString().replace(".000Z", "Z");
}

// A TZID without a VTIMEZONE in the file silently becomes floating time in ICAL.js; for us that
// is a bug in the file, so refuse instead of printing plausible numbers.
function requireZone(time, what) {
  const tzid = time.zone?.tzid;
  if (!tzid || tzid === "floating") {
    throw new Error(`${what} ${time.toString()} is floating: TZID without a VTIMEZONE?`);
  }
}

function main() {
  const text = readFileSync(0, "utf8");
  const calendar = new ICAL.Component(ICAL.parse(text));
  const vevents = calendar.getAllSubcomponents("vevent");
  const master = vevents.find((v) => !v.hasProperty("recurrence-id"));
  if (!master) throw new Error("no master VEVENT (one without RECURRENCE-ID)");
  const event = new ICAL.Event(master);
  for (const override of vevents.filter((v) => v.hasProperty("recurrence-id"))) {
    event.relateException(override);
  }
  requireZone(event.startDate, "DTSTART");
  const iterator = event.iterator();
  const occurrences = [];
  for (let next = iterator.next(); next && occurrences.length < limit; next = iterator.next()) {
    const details = event.getOccurrenceDetails(next);
    requireZone(details.startDate, "occurrence");
    occurrences.push({
      recurrence_id: utc(details.recurrenceId),
      start: utc(details.startDate),
      end: utc(details.endDate),
    });
  }
  process.stdout.write(JSON.stringify(occurrences) + "\n");
}

try {
  main();
} catch (error) {
  process.stderr.write(`expand.mjs: ${error.message}\n`);
  process.exit(2);
}
