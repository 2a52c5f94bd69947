# One value 10^6 times the others on a patient with the event (tests/test_reliability_numeric.py,
# case "extreme-value-event"; data written by that test's edit of the shipped synthetic cohort).
# R survival converges (7 iterations): the package must give R's estimates, not a failure.
# Run from the repository root: Rscript tests/reference/extreme_value.R
library(survival)
library(jsonlite)
path <- "tests/reference/data/extreme_value_event.csv"
d <- read.csv(path)
d$sev <- match(d$fracture_severity, c("mild", "moderate", "severe")) - 1
fit <- coxph(Surv(time_to_leakage_months, leakage) ~ ct_value_hu + sev + cortical_fracture + cement_viscosity +
               cement_volume_ml + days_injury_to_surgery, data = d, ties = "efron")
out <- list(md5 = unname(tools::md5sum(path)), iter = fit$iter, coef = unname(coef(fit)),
            se = unname(sqrt(diag(vcov(fit)))), terms = names(coef(fit)), loglik = fit$loglik)
write_json(out, "tests/reference/extreme_value.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
