// Package trending is the `lake trending` job: per-item interaction counts in event-time
// windows, a seasonal forecast of each item's count, and a score for how far a count is beyond
// it; items that pass a threshold are "trending", and the top items by count are "popular".
// Both are appended to Delta tables under an output prefix (PREFIX/trending, PREFIX/popular),
// one commit per closed window or group of windows.
//
// # Model
//
// A window of length D starts at origin + k*D (origin 1970-01-05, a Monday). An item's count in
// a window is, by Params.Count: the number of distinct users who interacted with it, each
// weighted by their strongest interaction type (CountUsers, the default; weights 1 unless
// given); the number of rows, each with its type's weight (CountEvents); or the sum of the rows'
// value column times their type's weight (CountValue: pre-aggregated series such as one row per
// day and region with its number of cases; a null or negative value counts 0, and the lineage's
// metrics count those rows). The forecast of item i in window k is
//
//	mu = level_i * (T_k - c_ik) * season_i(hour of day) * season_cat(hour of week)
//
// where T_k is the site-wide count of the window (so a site-wide spike, the daily peak and the
// weekend are not surges), level_i the item's smoothed share of the rest of the site, the
// item's daily season is shrunk towards its category's (properties['category']), and the
// category's seasons towards the site-wide curve. The score is the larger of -log10 of the
// negative-binomial tail probability of the count under the forecast and the CUSUM statistic
// for a doubling (in log10 units); an item is flagged when the score reaches Params.Threshold
// and its count Params.MinCount. DESIGN-NOTES.md gives the equations, the constants and why.
//
// Model trending-v2 (count modes other than users, or windows longer than half a day) adds:
// each item's variance is the site-wide one times its own overdispersion, learnt from its
// standardised residuals (a noisy region does not flag all the time, nor a steady one never);
// while an item's CUSUM holds evidence of a rise, its level learns at most one standard
// deviation above the forecast (a slow ramp is not learnt before it is flagged); the rest of the
// site counts at least its forecast share of the site's forecast (one large item's low day does
// not flag all the others); the site-wide variance is learnt from the warm-up on. For windows
// longer than half a day the item's own season is the weekly one (a day of the week: reporting
// dips at weekends), the level's half-life is at least 14 windows, and the default allowed
// lateness is 0 (DefaultLatenessFor). Distinct users in windows of at most half a day are
// computed exactly as by trending-v1, whose name (and so appIds and checkpoints) they keep.
//
// # Windows, batch and follow
//
// A window closes once the newest event time seen passes its end plus the allowed lateness,
// in batch mode (Run: every closed window of a pinned snapshot) and in follow mode (Follow:
// new commits of the source, read file by file) alike, so the two commit the same rows as long
// as no event arrives later than the allowed lateness (those are counted and dropped).
//
// # Outputs and idempotence
//
// Each output's commit records txn{appId, version = the index k of the last window written};
// appId is jobs.AppID("trending", output, parameters). A run appends only the windows after
// the recorded one, so a rerun writes nothing and a restarted follower resumes after the last
// committed window. Force rewrites every window, replacing the table in one commit. The count
// mode is one of the parameters (recorded only when not users, so that older outputs keep their
// appIds), so a follower's model checkpoint, named and checked by the appId, is never restored
// under another mode.
//
// # Concurrency
//
// A Detector is not safe for concurrent use; Run and Follow use one each. The scan that feeds
// it reads files concurrently (reader.Scan).
//
// # Errors
//
// ErrBadParameter (a usage error in the CLI), ErrEmptySource, *jobs.MissingColumnsError, and
// the table package's errors for a missing source or version, wrapped with what to do.
package trending
