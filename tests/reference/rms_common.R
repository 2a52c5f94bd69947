# Shared by rms_reference.R (fixture) and rms_shipped.R (the shipped cohort): every rms number
# the Python tests compare with, for one fitted cph model, as one list (written as JSON).
#
# fit: cph(..., x = TRUE, y = TRUE, surv = TRUE, time.inc = u, eps = 1e-12) on data d;
# preds: the predictor names (nomogram axes); m_group: calibrate's m; *_runs: number of
# bootstrap runs of B = 50 each (their mean is R's estimate, sd / sqrt(runs) its Monte-Carlo
# standard error); seed: set before the resampling.

rms_outputs <- function(fit, d, preds, u, m_group, val_runs, cal_runs, seed) {
  S <- Survival(fit)
  lp <- fit$linear.predictors            # centred at fit$means, as cph does
  time <- unname(fit$y[, 1]); ev <- unname(fit$y[, 2]); n <- length(lp)
  out <- list()

  # Cox fit and the Efron baseline (cph surv = survfit.cph, ctype 2, at fit$means)
  out$cox <- list(
    call = "cph(..., x = TRUE, y = TRUE, surv = TRUE, time.inc = u, eps = 1e-12)",
    term = names(coef(fit)), coef = unname(coef(fit)), se = unname(sqrt(diag(fit$var))),
    loglik = fit$loglik, means = unname(fit$means), center = fit$center, s0_u = unname(S(u, 0)),
    baseline_time = fit$time[-1], baseline_cumhaz = -log(fit$surv[-1]), lp = unname(lp))

  # nomogram
  nom <- nomogram(fit, fun = function(x) 1 - S(u, x), funlabel = "risk", lp = TRUE)
  info <- attr(nom, "info")
  out$nomogram <- list(
    call = "nomogram(fit, fun = function(x) 1 - S(u, x), lp = TRUE)",
    axes = lapply(setNames(preds, preds), function(p) list(value = as.character(nom[[p]][[p]]), points = nom[[p]]$points)),
    sc = info$sc, intercept = unname(info$Intercept), lp_at = info$lp.at,
    total_points = nom$total.points$x, lp_axis_x = nom$lp$x, lp_axis_real = nom$lp$x.real,
    risk_axis_x = nom$risk$x, risk_axis_real = nom$risk$x.real)

  mc <- function(runs, col) {
    m <- sapply(runs, function(v) v[, col])
    m <- matrix(m, ncol = length(runs))
    list(mean = unname(rowMeans(m)), se = unname(apply(m, 1, sd) / sqrt(ncol(m))))
  }

  # validate
  set.seed(seed)
  v0 <- rms::validate(fit, B = 2)
  vruns <- lapply(seq_len(val_runs), function(i) rms::validate(fit, B = 50))
  out$validate <- list(
    call = sprintf("validate(fit, B = 50) x %d runs (set.seed(%d))", val_runs, seed),
    index = rownames(v0), apparent = unname(v0[, "index.orig"]),
    training = mc(vruns, "training"), test = mc(vruns, "test"), optimism = mc(vruns, "optimism"),
    n_boot = 50 * val_runs, n_used = sum(sapply(vruns, function(v) v[1, "n"])))

  # calibrate (KM)
  surv_u <- unname(S(u, lp))
  g <- max(1, floor(n / m_group))
  cuts <- unname(unique(quantile(c(0, 1, surv_u), seq(0, 1, length = g + 1))))
  set.seed(seed + 1)
  c0 <- rms::calibrate(fit, cmethod = "KM", u = u, m = m_group, B = 2)
  cruns <- lapply(seq_len(cal_runs), function(i) rms::calibrate(fit, cmethod = "KM", u = u, m = m_group, B = 50))
  gk <- groupkm(surv_u, Surv(time, ev), u = u, cuts = cuts)
  out$calibrate <- list(
    call = sprintf("calibrate(fit, cmethod = 'KM', u = %g, m = %d, B = 50) x %d runs (set.seed(%d))", u, m_group, cal_runs, seed + 1),
    m = m_group, cuts = cuts, group_n = unname(gk[, "n"]), events = unname(gk[, "events"]),
    mean_predicted = unname(c0[, "mean.predicted"]), km = unname(c0[, "KM"]), std_err = unname(c0[, "std.err"]),
    index_orig = unname(c0[, "index.orig"]),
    optimism = mc(cruns, "mean.optimism"), training = mc(cruns, "training"), test = mc(cruns, "test"),
    n_boot = 50 * cal_runs, n_used = unname(rowSums(sapply(cruns, function(v) v[, "n"]))))

  # single replicates: the first draw of predab.resample after set.seed(s) is sample(n, replace = TRUE)
  out$replicates <- lapply(1:5, function(s) {
    set.seed(5000 + s); idx <- sample(n, replace = TRUE)
    set.seed(5000 + s); v <- rms::validate(fit, B = 1)
    set.seed(5000 + s); k <- rms::calibrate(fit, cmethod = "KM", u = u, m = m_group, B = 1)
    list(index = idx, validate_training = unname(v[, "training"]), validate_test = unname(v[, "test"]),
         calibrate_training = unname(k[, "training"]), calibrate_test = unname(k[, "test"]))
  })

  # smooth calibration: Austin, Harrell, van Klaveren, Stat Med 2020 (appendix code)
  risk_u <- 1 - surv_u
  cal_d <- data.frame(time = time, ev = ev, cll = log(-log(1 - risk_u)))
  cal <- cph(Surv(time, ev) ~ rcs(cll, 3), data = cal_d, x = TRUE, y = TRUE, surv = TRUE, eps = 1e-12, tol = 1e-15, iter.max = 100)
  obs <- 1 - survest(cal, newdata = cal_d, times = u)$surv
  delta <- abs(obs - risk_u)
  grid <- seq(min(risk_u), max(risk_u), length.out = 7)
  out$smooth <- list(
    call = "cph(Surv(time, ev) ~ rcs(log(-log(1 - risk)), 3)); 1 - survest(cal, times = u)",
    knots = unname(rcspline.eval(cal_d$cll, nk = 3, knots.only = TRUE)), observed = unname(obs),
    ici = mean(delta), e50 = unname(median(delta)), e90 = unname(quantile(delta, 0.9)), emax = max(delta),
    grid = grid, grid_observed = unname(1 - survest(cal, newdata = data.frame(cll = log(-log(1 - grid))), times = u)$surv))

  # calibration-in-the-large and slope: Crowson, Atkinson, Therneau, SMMR 2016
  H0 <- stepfun(out$cox$baseline_time, c(0, out$cox$baseline_cumhaz))
  E <- H0(pmin(time, u)) * exp(lp)
  o <- ev * (time <= u)
  g1 <- glm(o ~ 1 + offset(log(E)), family = poisson)
  g2 <- glm(o ~ lp + offset(log(E) - lp), family = poisson)
  out$line <- list(call = "glm(o ~ 1 + offset(log(E)), poisson); glm(o ~ lp + offset(log(E) - lp), poisson)",
                   expected = sum(E), intercept = unname(coef(g1)[1]), slope = unname(coef(g2)[2]),
                   slope_intercept = unname(coef(g2)[1]))

  # IPCW Brier score just below the horizon
  t_b <- u * (1 - 1e-6)
  sc <- Score(list(cox = matrix(1 - unname(S(t_b, lp)), ncol = 1)), formula = Surv(time, ev) ~ 1,
              data = data.frame(time = time, ev = ev), times = t_b, metrics = "brier", cens.model = "km",
              null.model = TRUE, se.fit = FALSE)
  b <- as.data.frame(sc$Brier$score)
  out$brier <- list(call = "riskRegression::Score(list(risk), Surv(time, ev) ~ 1, times = u * (1 - 1e-6), metrics = 'brier', cens.model = 'km')",
                    t = t_b, brier = b$Brier[b$model == "cox"], brier_null = b$Brier[b$model == "Null model"])

  out$dxy <- list(call = "dxy.cens(lp, Surv(time, ev), type = 'hazard')",
                  dxy = unname(dxy.cens(lp, Surv(time, ev), type = "hazard")["Dxy"]))
  out
}
