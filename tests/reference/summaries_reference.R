# Reference numbers for the summaries the figures draw (computed in the analysis, stored in the
# results): the LOWESS smooth of the scaled Schoenfeld residuals (models/ph.py
# schoenfeld_smooth), the per-time-point mean with its t interval and the quartiles of
# repeated measures (outcome_summaries.py), the spread of the predicted risks (riskgroups.risk_spread).  R 4.2 (stats, jsonlite). Run from the repository root:
#   Rscript tests/reference/summaries_reference.R
# Inputs: survival_<case>.json (R's own cox.zph(fit, transform = "km", terms = TRUE) residuals,
# written by survival_reference.R) and outcomes_fixture.csv (written by outcomes.R).
# Output: summaries_r.json.
suppressPackageStartupMessages(library(jsonlite))
here <- "tests/reference"

# ---- lowess of R's scaled Schoenfeld residuals, per term --------------------------------------
zph_smooth <- lapply(c(rossi = "rossi", lung = "lung", gbsg2 = "gbsg2", cohort = "cohort"), function(case) {
  ref <- fromJSON(file.path(here, sprintf("survival_%s.json", case)))
  m <- ref$models$main
  x <- m$zph$x
  y <- as.matrix(m$zph_terms$y)  # rows = events in time order, columns = terms
  stopifnot(nrow(y) == length(x))
  terms <- m$zph_terms$table$term
  terms <- terms[terms != "GLOBAL"]
  lapply(setNames(seq_along(terms), terms), function(j) {
    s <- lowess(x, y[, j])  # R defaults: f = 2/3, iter = 3, delta = 0.01 * diff(range(x))
    list(x = s$x, y = s$y)
  })
})

# ---- per time point: mean with t interval, quartiles (type 7) -------------------------------------
fx <- read.csv(file.path(here, "outcomes_fixture.csv"))
rows <- list()
for (measure in c("pain", "disab")) for (visit in c("base", "d3", "m12")) {
  v <- fx[fx$visit == visit, measure]
  v <- v[!is.na(v)]
  tt <- t.test(v)  # R: t.test(x)$conf.int, 95%
  q <- quantile(v, c(0.25, 0.5, 0.75), type = 7)
  rows[[length(rows) + 1]] <- data.frame(measure = measure, timepoint = visit, n = length(v), mean = mean(v),
                                         sd = sd(v), ci_low = tt$conf.int[1], ci_high = tt$conf.int[2],
                                         q1 = q[[1]], median = q[[2]], q3 = q[[3]])
}
# ---- spread of the predicted risks (the nomogram's risk axis): R's own risks of the shipped cohort --
cohort <- fromJSON(file.path(here, "survival_cohort.json"))$models$main
risk <- 1 - cohort$s0_horizon^exp(cohort$lp)  # 1 - S0(horizon)^exp(lp), survfit(coxph) baseline
q <- unname(quantile(risk, c(0, 0.05, 0.95, 1), type = 7))
risk_spread <- list(risk = risk, lowest = q[1], p05 = q[2], p95 = q[3], highest = q[4])

out <- list(source = "tests/reference/summaries_reference.R (R stats lowess, t.test, quantile type 7)",
            zph_smooth = zph_smooth, outcome_summary = do.call(rbind, rows), risk_spread = risk_spread)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(here, "summaries_r.json"))
