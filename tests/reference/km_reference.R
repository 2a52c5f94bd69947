# Reference numbers for the Kaplan-Meier module (cementleak_stats/km.py; tests/test_km.py).
#
# R 4.2, survival 3.5, prodlim 2019.11 (Debian packages), jsonlite.
# Run from the repository root:   Rscript tests/reference/km_reference.R
# Writes tests/reference/km_reference.json (committed; CI never runs R).
#
# Data: the test studies tests/studies/{rossi,lung,gbsg2} (time, event, one grouping column).
# For each:
#   survfit(Surv(t, e) ~ 1)                        every step: time, n.risk, n.event, n.censor,
#                                                  surv, std.err (Greenwood se of log S)
#   survfit(Surv(t, e) ~ group)                    the same per group
#   survfit(Surv(t, e) ~ 1, weights = w)           case weights w = 1 + (row - 1) %% 3
#   summary(fit, times = grid, extend = TRUE)      S and n.risk at a grid of times
#   summary(survfit(Surv(t, e) ~ 1))$table["median"]
#   prodlim(Hist(t, e) ~ 1, reverse = TRUE)        censoring distribution G (events first at
#                                                  ties, as riskRegression's IPCW): G at the grid
#                                                  and G(T_i-) per patient (predictSurvIndividual,
#                                                  lag = 1), and the median of G with survival's
#                                                  median rule (survmean's minmin)
#   summary(survfit(Surv(t, 1 - e) ~ 1))$table["median"]   median follow-up, censorings first
suppressPackageStartupMessages({ library(survival); library(prodlim); library(jsonlite) })

studies <- list(
  rossi = list(file = "tests/studies/rossi/rossi.csv", time = "week", event = "arrest", group = "fin",
               grid = c(0, 10, 26, 51.5, 52, 60)),
  lung = list(file = "tests/studies/lung/lung.csv", time = "time", event = "status", group = "sex",
              grid = c(0, 100, 365, 500, 1022, 1100)),
  gbsg2 = list(file = "tests/studies/gbsg2/gbsg2.csv", time = "rfs_years", event = "cens", group = "horTh",
               grid = c(0, 1, 2.5, 5, 7.2849))
)

steps <- function(f) {
  data.frame(time = f$time, n_risk = f$n.risk, n_event = f$n.event, n_censor = f$n.censor,
             survival = f$surv, se_log = f$std.err)
}

# survival's median rule (survmean's minmin): first time with S < 1/2 + tol; on a flat
# stretch at exactly 1/2 that later drops, the midpoint of it and the next drop
minmin <- function(y, x) {
  tolerance <- .Machine$double.eps^0.5
  keep <- (!is.na(y) & y < (0.5 + tolerance))
  if (!any(keep)) return(NA)
  x <- x[keep]; y <- y[keep]
  if (abs(y[1] - 0.5) < tolerance && any(y < y[1])) (x[1] + x[min(which(y < y[1]))]) / 2 else x[1]
}

one <- function(s) {
  d <- read.csv(s$file)
  t <- d[[s$time]]; e <- d[[s$event]]; g <- as.character(d[[s$group]])
  w <- 1 + (seq_len(nrow(d)) - 1) %% 3
  fit <- survfit(Surv(t, e) ~ 1)
  by_group <- lapply(sort(unique(g)), function(lv) {
    c(list(level = lv), as.list(steps(survfit(Surv(t[g == lv], e[g == lv]) ~ 1))))
  })
  at <- summary(fit, times = s$grid, extend = TRUE)
  rev <- prodlim(Hist(t, e) ~ 1, reverse = TRUE)
  list(
    time = s$time, event = s$event, group = s$group, grid = s$grid,
    km = as.list(steps(fit)),
    km_by_group = by_group,
    km_weighted = as.list(steps(survfit(Surv(t, e) ~ 1, weights = w))),
    at_grid = list(survival = at$surv, n_risk = at$n.risk),
    median = unname(summary(fit)$table["median"]),
    censoring = list(time = rev$time, survival = rev$surv,
                     at_grid = as.numeric(predict(rev, times = s$grid)),
                     left_at_patient = as.numeric(predictSurvIndividual(rev, lag = 1)),
                     median = minmin(rev$surv, rev$time)),
    median_followup_censorings_first = unname(summary(survfit(Surv(t, 1 - e) ~ 1))$table["median"])
  )
}

out <- c(list(r_version = R.version.string, survival = as.character(packageVersion("survival")),
              prodlim = as.character(packageVersion("prodlim"))),
         lapply(studies, one))
write_json(out, "tests/reference/km_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
