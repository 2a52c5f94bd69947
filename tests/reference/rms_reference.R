# Reference numbers for the nomogram, bootstrap validation and calibration tests
# (tests/test_coxfit.py, test_nomogram.py, test_resample.py, test_calibration.py).
#
# R 4.2, survival 3.5, rms 6.5, Hmisc, riskRegression, jsonlite (Debian packages).
# Run from the repository root:
#   Rscript tests/reference/rms_reference.R [path/to/rossi.csv]   (default tests/studies/rossi/rossi.csv)
# It writes the fixture cohort tests/reference/data/rms_cohort.csv (seeded simulation),
# tests/reference/rms_fixture.json (every rms number for the fixture model, see rms_common.R),
# rms_rossi.json, rms_pretty.csv and rms_knots.json.  CI never runs R; the outputs are committed.
#
# Fits use tight convergence (eps = 1e-12) so that coefficients are the exact optimum; rms'
# default eps = 1e-4 leaves them ~1e-5 away (METHODS.md).  Inside the bootstrap, rms itself
# refits with eps = 1e-4 (validate) or the cph default (calibrate); that difference is far
# below the Monte-Carlo error of the optimism estimates compared in the tests.

suppressMessages({
  library(survival)
  library(rms)
  library(jsonlite)
  library(riskRegression)
})

args <- commandArgs(trailingOnly = TRUE)
rossi_csv <- if (length(args) >= 1) args[1] else "tests/studies/rossi/rossi.csv"   # lifelines' values + id
out <- "tests/reference"
dir.create(file.path(out, "data"), showWarnings = FALSE)
source(file.path(out, "rms_common.R"))
wj <- function(x, name) write_json(x, file.path(out, name), digits = NA, auto_unbox = TRUE, pretty = TRUE)

# ---------------------------------------------------------------- fixture cohort (seeded)
set.seed(20250427)
n <- 120
ct <- round(pmin(pmax(rnorm(n, 110, 35), 20), 230), 1)
severity <- sample(0:2, n, TRUE, prob = c(.4, .35, .25))
viscosity <- sample(c("high", "low"), n, TRUE, prob = c(.6, .4))
cortical <- sample(c("no", "yes"), n, TRUE, prob = c(.65, .35))
volume <- round(runif(n, 2, 8), 1)
level <- sample(c("thoracic", "thoracolumbar", "lumbar"), n, TRUE)
treated <- sample(1:4, n, TRUE, prob = c(.5, .3, .15, .05))
age <- round(rnorm(n, 70, 8))
lp_true <- -0.015 * (ct - 110) + 0.6 * severity + 0.9 * (viscosity == "low") + 0.8 * (cortical == "yes") +
  0.35 * (volume - 5) + 0.3 * (level == "lumbar") + 0.2 * (treated - 1)
T <- rexp(n, rate = 0.012 * exp(lp_true))
C <- ifelse(runif(n) < 0.12, sample(2:11, n, TRUE), 12)   # some drop-out before 12 months
time <- pmin(ceiling(T), C)                                  # whole months: many tied times
ev <- as.integer(ceiling(T) <= C)
sev_levels <- c("mild", "moderate", "severe")
cohort <- data.frame(
  patient_id = sprintf("P%03d", 1:n), ct_value_hu = ct, fracture_severity = sev_levels[severity + 1],
  cement_viscosity = viscosity, cortical_fracture = cortical, cement_volume_ml = volume,
  fracture_level = level, levels_treated = treated, age_years = age,
  time_months = time, leakage = ev)
write.csv(cohort, file.path(out, "data", "rms_cohort.csv"), row.names = FALSE, quote = FALSE)

# R coding equal to cementleak_stats.design: severity as a 0/1/2 score, treatment contrasts
# with the study file's reference levels first.
d <- data.frame(
  ct_value_hu = ct, fracture_severity = severity,
  cement_viscosity = factor(viscosity, levels = c("high", "low")),
  cortical_fracture = factor(cortical, levels = c("no", "yes")),
  cement_volume_ml = volume,
  fracture_level = factor(level, levels = c("thoracolumbar", "thoracic", "lumbar")),
  levels_treated = treated, age_years = age, time = time, ev = ev)
dd <- datadist(d); options(datadist = "dd")
form <- Surv(time, ev) ~ ct_value_hu + fracture_severity + cement_viscosity + cortical_fracture +
  cement_volume_ml + fracture_level + levels_treated
cfit <- coxph(form, data = d, ties = "efron", control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100))
fit <- cph(form, data = d, x = TRUE, y = TRUE, surv = TRUE, time.inc = 12, eps = 1e-12, tol = 1e-15, iter.max = 100)
stopifnot(max(abs(coef(cfit) - coef(fit))) < 1e-9)
# Note: survival 3.x centres coxph at means that are 0 for 0/1 columns, so survfit(cfit) is for
# another reference patient; cph (rms) centres at all column means, as CoxModel does.
preds <- c("ct_value_hu", "fracture_severity", "cement_viscosity", "cortical_fracture",
           "cement_volume_ml", "fracture_level", "levels_treated")
res <- rms_outputs(fit, d, preds, u = 12, m_group = 30, val_runs = 40, cal_runs = 100, seed = 1)
res$cox$coxph_coef <- unname(coef(cfit)); res$cox$coxph_loglik <- cfit$loglik
wj(res, "rms_fixture.json")

# ---------------------------------------------------------------- rossi (lifelines' copy, tests/studies/rossi)
rossi <- read.csv(rossi_csv)
rfit <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = rossi,
              ties = "efron", control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100))
rsf <- survfit(rfit)
wj(list(call = "coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, rossi, ties = 'efron'); survfit(fit)",
        coef = unname(coef(rfit)), term = names(coef(rfit)), se = unname(sqrt(diag(vcov(rfit)))),
        loglik = rfit$loglik, means = unname(rfit$means), time = rsf$time, cumhaz = rsf$cumhaz,
        n_event = rsf$n.event), "rms_rossi.json")  # survfit at rfit$means (0 for 0/1 columns)

# ---------------------------------------------------------------- pretty()
set.seed(7)
cases <- list(c(0, 0), c(5, 5), c(-3, -3), c(0, 1e-10), c(1, 1 + 1e-12), c(0, 100), c(0, 101.3),
              c(-0.47, 1.23), c(20, 230), c(2, 8), c(-2.345, 3.119), c(0, 1), c(0.0137, 0.9821),
              c(1e6, 1.0004e6), c(-1e-3, 2e-3), c(-100, -3), c(0.1, 0.7), c(0, 3.7), c(99.5, 100.5),
              c(0, 143.27), c(-1.5, 0), c(0, 1e308), c(3, 1003), c(123456, 987654))
for (i in 1:150) {
  mag <- 10^sample(-6:6, 1)
  a <- rnorm(1) * mag; b <- a + abs(rnorm(1)) * mag * 10^sample(-3:1, 1)
  cases[[length(cases) + 1]] <- c(a, b)
}
rows <- list()
for (cs in cases) for (nn in c(10, 5, 3, 1)) {
  v <- pretty(cs, n = nn)
  rows[[length(rows) + 1]] <- data.frame(lo = sprintf("%.17g", cs[1]), hi = sprintf("%.17g", cs[2]), n = nn,
                                         values = paste(sprintf("%.17g", v), collapse = ";"))
}
write.csv(do.call(rbind, rows), file.path(out, "rms_pretty.csv"), row.names = FALSE)

# ---------------------------------------------------------------- Hmisc default spline knots
set.seed(8)
kcases <- list(
  list(label = "n = 60 continuous", x = round(rnorm(60), 3), nk = 3),
  list(label = "n = 150 continuous", x = round(rexp(150), 3), nk = 3),
  list(label = "n = 150, 4 knots", x = round(rnorm(150), 3), nk = 4),
  list(label = "n = 80, 5 knots", x = round(runif(80), 3), nk = 5),
  list(label = "many ties at the minimum", x = c(rep(0, 20), round(runif(100, 0, 5), 2)), nk = 3),
  list(label = "many ties at both ends", x = c(rep(-1, 12), round(rnorm(100), 2), rep(3, 9)), nk = 4),
  list(label = "few distinct values", x = rep(c(1, 2, 3, 4, 5), 12), nk = 3))
for (i in seq_along(kcases)) kcases[[i]]$knots <- rcspline.eval(kcases[[i]]$x, nk = kcases[[i]]$nk, knots.only = TRUE)
wj(list(call = "Hmisc::rcspline.eval(x, nk = nk, knots.only = TRUE)", cases = kcases), "rms_knots.json")
cat("done\n")
