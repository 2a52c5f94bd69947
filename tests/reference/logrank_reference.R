# The k-group log-rank test of riskgroups.logrank_test against R survival's survdiff.
# Run from the repository root: Rscript tests/reference/logrank_reference.R
# Writes tests/reference/logrank_r.json: each case's data (time, event, group) and
#   sd <- survdiff(Surv(t, e) ~ g)  (rho = 0, the log-rank test)
#   chisq = sd$chisq, df = sum(sd$exp > 0) - 1 (survdiff leaves out a group with no one at risk
#   at any event time), observed = sd$obs, expected = sd$exp.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
set.seed(20261202)
case <- function(t, e, g) {
  sd <- survdiff(Surv(t, e) ~ g)
  list(time = t, event = e, group = g, chisq = unname(sd$chisq), df = sum(sd$exp > 0) - 1,
       observed = unname(sd$obs), expected = unname(sd$exp))
}
n <- 300
g3 <- sample(0:2, n, replace = TRUE)
t3 <- round(rexp(n, 0.1 * (1 + g3)), 0) + 1          # rounded: many tied times
e3 <- rbinom(n, 1, 0.7)
g2 <- sample(0:1, 80, replace = TRUE)
t2 <- rexp(80, 0.2 + 0.1 * g2); e2 <- rbinom(80, 1, 0.6)
# four groups, one without events, one whose follow-up ends before the first event time
g4 <- rep(0:3, each = 25)
t4 <- c(round(runif(25, 5, 20)), round(runif(25, 5, 20)), round(runif(25, 5, 20)), round(runif(25, 1, 3)) / 10)
e4 <- c(rbinom(25, 1, 0.5), rbinom(25, 1, 0.8), rep(0, 25), rep(0, 25))
cases <- list(three_tied = case(t3, e3, g3), two = case(t2, e2, g2), four_degenerate = case(t4, e4, g4))
writeLines(toJSON(list(R = R.version.string, survival = as.character(packageVersion("survival")), cases = cases),
                  digits = NA, auto_unbox = TRUE, pretty = FALSE), "tests/reference/logrank_r.json")
