# Reference numbers for the validation of a frozen Cox model in another cohort
# (cementleak_stats/validation/external.py; tests/test_external.py).
#
# R 4.2, survival 3.5, rms 6.5, riskRegression 2022.11.28, jsonlite (Debian packages).
# Run from the repository root:   Rscript tests/reference/external_reference.R
# Writes (committed; CI never runs R):
#   tests/reference/data/external_lung_dev.csv, external_lung_val.csv   survival::lung by institution
#   tests/reference/external_rossi.json, external_lung.json             the numbers below
#
# Data sets (study files in tests/reference/data/):
#   rossi  rossi.csv in row order: development R001-R216, validation R217-R432; horizon 52 weeks
#          (everyone event-free is censored at 52: the AUC and Brier score are taken just below it)
#   lung   survival::lung, development inst 1-11, validation inst 12-33, complete cases of age,
#          sex, ph.ecog, ph.karno; horizon 365 days (censoring before the horizon: IPCW matters)
#
# Calls (the model is fitted on the development cohort only and never refitted):
#   coxph(Surv(t, e) ~ ..., ties = "efron", eps = 1e-12)   and the same model as
#   cph(..., surv = TRUE, x = TRUE, y = TRUE, eps = 1e-12)  for rms
#   rms::val.surv(cph_fit, newdata = val, S = Surv(t, e), u = u)$p     predicted S(u) in val
#   survival::concordance(fit, newdata = val)                          Harrell's C and its variance
#   riskRegression::Score(list(risk), Surv(t, e) ~ 1, data = val, times = u - 1e-6, metrics = "auc",
#                         cens.model = "km", conservative = TRUE)     AUC and SE
#   summary(survfit(Surv(t, e) ~ 1, val), times = u)                    KM O and Greenwood SE
#   glm(o ~ 1 + offset(log(E)), poisson); glm(o ~ lp + offset(log(E) - lp), poisson)
#       with E = predict(fit, newdata = val truncated at u, type = "expected")   (Crowson 2016),
#       subset E > 0: a validation patient with an event before the development cohort's first
#       event time has E = 0 and O = 1, which no Poisson model can fit (rossi: one patient);
#       log(O/E) is also given from the totals, sum(o) / sum(E), which keeps that event
#   rms::groupkm(S(u), Surv(t, e), u = u, cuts = quantile(c(0, 1, S(u)), 0:g / g))
#   cph(Surv(t, e) ~ rcs(log(-log S(u)), 3)) on val; 1 - survest(..., times = u)    (Austin 2020)
#   riskRegression::Score(..., metrics = "brier", times = u * (1 - 1e-6))
#   net benefit with survfit Kaplan-Meier risks (Vickers 2008), as decision.R
suppressPackageStartupMessages({
  library(survival); library(rms); library(jsonlite); library(riskRegression)
})
out <- "tests/reference"
wj <- function(x, name) write_json(x, file.path(out, name), digits = NA, auto_unbox = TRUE, pretty = TRUE)

external <- function(dev, val, rhs, u, m_group, thresholds) {
  f <- as.formula(paste("Surv(t, e) ~", rhs))
  fit <- coxph(f, data = dev, ties = "efron", x = TRUE, control = coxph.control(eps = 1e-12, iter.max = 100))
  cfit <- cph(f, data = dev, x = TRUE, y = TRUE, surv = TRUE, time.inc = u, eps = 1e-12, tol = 1e-15, iter.max = 100)
  b <- coef(fit)
  Xd <- model.matrix(fit)
  Xv <- model.matrix(fit, data = val)
  centre <- sum(b * colMeans(Xd))                       # the package centres every column (as cph)
  lp_dev <- drop(Xd %*% b) - centre
  lp_val <- drop(Xv %*% b) - centre
  res <- list(coef = unname(b), term = names(b), n_dev = nrow(dev), n_val = nrow(val),
              events_dev = sum(dev$e), events_val = sum(val$e), lp_val = unname(lp_val))

  # predicted survival at u in the validation cohort (rms)
  vs <- val.surv(cfit, newdata = val, S = Surv(val$t, val$e), u = u)
  p <- unname(vs$p)
  risk <- 1 - p
  res$val_surv <- list(call = "val.surv(cph_fit, newdata = val, S = Surv(t, e), u = u)$p",
                       risk = risk, cph_lp_val = unname(predict(cfit, newdata = val, type = "lp")),
                       hare_mean_abs_error = mean(abs(vs$p - vs$actual)))

  # discrimination
  cc <- concordance(fit, newdata = val)
  res$concordance <- list(call = "concordance(fit, newdata = val)", concordance = unname(cc$concordance),
                          var = unname(cc$var), count = as.list(cc$count))
  sc <- Score(list(model = matrix(risk, ncol = 1)), formula = Surv(t, e) ~ 1, data = val, times = u - 1e-6,
              metrics = "auc", cens.model = "km", conservative = TRUE, se.fit = TRUE, null.model = FALSE)
  a <- as.data.frame(sc$AUC$score)
  res$auc <- list(call = "Score(list(risk), Surv(t, e) ~ 1, data = val, times = u - 1e-6, metrics = 'auc', cens.model = 'km', conservative = TRUE)",
                  auc = a$AUC, se = a$se)

  # calibration-in-the-large: Kaplan-Meier observed risk over mean predicted risk
  s <- summary(survfit(Surv(t, e) ~ 1, data = val), times = u, extend = TRUE)
  sd_ <- summary(survfit(Surv(t, e) ~ 1, data = dev), times = u, extend = TRUE)
  res$km <- list(observed = 1 - s$surv, se = s$std.err, predicted = mean(risk),
                 observed_dev = 1 - sd_$surv)

  # Crowson et al.: Poisson with offset, follow-up truncated at u
  vt <- val
  vt$e <- as.integer(vt$e == 1 & vt$t <= u)
  vt$t <- pmin(vt$t, u)
  E <- unname(predict(fit, newdata = vt, type = "expected"))
  lpv <- lp_val
  keep <- E > 0
  g1 <- glm(vt$e ~ 1 + offset(log(E)), family = poisson, subset = keep)
  g2 <- glm(vt$e ~ lpv + offset(log(E) - lpv), family = poisson, subset = keep)
  res$poisson <- list(call = "glm(o ~ 1 + offset(log(E)), poisson); glm(o ~ lp + offset(log(E) - lp), poisson); E = predict(fit, newdata, type = 'expected')",
                      observed = sum(vt$e), expected = sum(E), log_o_e = log(sum(vt$e) / sum(E)),
                      n_zero_expected = sum(!keep), events_zero_expected = sum(vt$e[!keep]),
                      intercept_glm = unname(coef(g1)[1]), intercept_se_glm = unname(sqrt(vcov(g1)[1, 1])), slope = unname(coef(g2)[2]),
                      slope_se = unname(sqrt(vcov(g2)[2, 2])), slope_intercept = unname(coef(g2)[1]))

  # KM groups (apparent)
  g <- max(1, floor(nrow(val) / m_group))
  cuts <- unname(unique(quantile(c(0, 1, p), seq(0, 1, length = g + 1))))
  gk <- groupkm(p, Surv(val$t, val$e), u = u, cuts = cuts)
  res$groups <- list(call = "groupkm(p, Surv(t, e), u = u, cuts = cuts)", cuts = cuts, n = unname(gk[, "n"]),
                     events = unname(gk[, "events"]), predicted = unname(1 - gk[, "x"]), observed = unname(1 - gk[, "KM"]),
                     std_err = unname(gk[, "std.err"]))

  # smooth calibration on the validation cohort (Austin, Harrell, van Klaveren 2020)
  cal_d <- data.frame(t = val$t, e = val$e, cll = log(-log(p)))
  cal <- cph(Surv(t, e) ~ rcs(cll, 3), data = cal_d, x = TRUE, y = TRUE, surv = TRUE, eps = 1e-12, tol = 1e-15, iter.max = 100)
  obs <- 1 - survest(cal, newdata = cal_d, times = u)$surv
  delta <- abs(obs - risk)
  res$smooth <- list(ici = mean(delta), e50 = unname(median(delta)), e90 = unname(quantile(delta, 0.9)), emax = max(delta),
                     knots = unname(rcspline.eval(cal_d$cll, nk = 3, knots.only = TRUE)))

  # Brier score just below the horizon
  t_b <- u * (1 - 1e-6)
  rb <- 1 - survest(cfit, newdata = val, times = t_b)$surv
  sb <- Score(list(cox = matrix(unname(rb), ncol = 1)), formula = Surv(t, e) ~ 1, data = val, times = t_b,
              metrics = "brier", cens.model = "km", null.model = TRUE, se.fit = FALSE)
  bb <- as.data.frame(sb$Brier$score)
  res$brier <- list(brier = bb$Brier[bb$model == "cox"], brier_null = bb$Brier[bb$model == "Null model"])

  # decision curve in the validation cohort
  km_u <- function(d) {
    v <- summary(survfit(Surv(t, e) ~ 1, data = d), times = u, extend = TRUE)$surv
    if (max(d$t) < u && v > 0) NA_real_ else v
  }
  n <- nrow(val)
  s_all <- km_u(val)
  res$decision <- do.call(rbind, lapply(thresholds, function(pt) {
    w <- pt / (1 - pt)
    pos <- val[risk >= pt, ]
    k <- nrow(pos)
    nb <- if (k == 0) 0 else { sp <- km_u(pos); (1 - sp) * k / n - sp * k / n * w }
    data.frame(threshold = pt, net_benefit_model = nb, net_benefit_all = (1 - s_all) - s_all * w, n_treated = k)
  }))

  # case mix
  res$case_mix <- list(lp_mean = c(mean(lp_dev), mean(lp_val)), lp_sd = c(sd(lp_dev), sd(lp_val)),
                       predicted = c(mean(1 - unname(survest(cfit, newdata = dev, times = u)$surv)), mean(risk)))
  res
}

smd_cont <- function(a, b) abs(mean(a) - mean(b)) / sqrt((var(a) + var(b)) / 2)
smd_bin <- function(a, b) { p <- mean(a); q <- mean(b); abs(p - q) / sqrt((p * (1 - p) + q * (1 - q)) / 2) }
thr <- round(seq(0.01, 0.60, by = 0.01), 10)

# ------------------------------------------------------------------ rossi, split by row order
rossi_csv <- "tests/studies/rossi/rossi.csv"                # the one Rossi fixture (make_rossi.py); 0/1 columns
r <- read.csv(rossi_csv)
r <- r[order(r$id), ]
r$t <- r$week; r$e <- r$arrest
dev <- r[1:216, ]; val <- r[217:432, ]
rossi <- external(dev, val, "fin + age + race + wexp + mar + paro + prio", u = 52, m_group = 27, thresholds = thr)
rossi$smd <- list(age = smd_cont(dev$age, val$age), prio = smd_cont(dev$prio, val$prio),
                  fin = smd_bin(dev$fin == 1, val$fin == 1), wexp = smd_bin(dev$wexp == 1, val$wexp == 1))
rossi$source <- list(data_file = rossi_csv, study = "tests/reference/data/external_rossi_study.yaml",
                     data_md5 = unname(tools::md5sum(rossi_csv)))
wj(rossi, "external_rossi.json")

# ------------------------------------------------------------------ lung, by institution
l <- survival::lung
lung <- data.frame(id = sprintf("L%03d", seq_len(nrow(l))), time = l$time, death = l$status - 1L, age = l$age,
                   sex = c("male", "female")[l$sex], ph_ecog = l$ph.ecog, ph_karno = l$ph.karno, wt_loss = l$wt.loss)
has_inst <- !is.na(l$inst)
ldev <- lung[has_inst & l$inst <= 11, ]
lval <- lung[has_inst & l$inst >= 12, ]
write.csv(ldev, file.path(out, "data", "external_lung_dev.csv"), row.names = FALSE, na = "", quote = FALSE)
write.csv(lval, file.path(out, "data", "external_lung_val.csv"), row.names = FALSE, na = "", quote = FALSE)
prep <- function(d) {
  d <- d[complete.cases(d[, c("age", "sex", "ph_ecog", "ph_karno")]), ]
  d$t <- d$time; d$e <- d$death
  d$sex <- factor(d$sex, levels = c("male", "female"))     # reference: male (first level)
  d                                                          # ph_ecog: score 0-3 = its value
}
ldev <- prep(ldev); lval <- prep(lval)
lungr <- external(ldev, lval, "age + sex + ph_ecog + ph_karno", u = 365, m_group = 25, thresholds = thr)
lungr$smd <- list(age = smd_cont(ldev$age, lval$age), ph_karno = smd_cont(ldev$ph_karno, lval$ph_karno),
                  sex = smd_bin(ldev$sex == "female", lval$sex == "female"))
lungr$source <- list(data_file = "tests/reference/data/external_lung_val.csv",
                     study = "tests/reference/data/external_lung_study.yaml",
                     data_md5 = unname(tools::md5sum(file.path(out, "data", "external_lung_val.csv"))))
wj(lungr, "external_lung.json")
cat("rossi: C =", rossi$concordance$concordance, " lung: C =", lungr$concordance$concordance, "\n")
