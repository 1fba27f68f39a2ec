// The renderer of proxytask report and dashboard pages (see proxytask/report/html.py).
(function(){
const sortState = {};
function el(tag, attrs, text){const e=document.createElement(tag);
  for(const k in (attrs||{})){e.setAttribute(k, attrs[k]);}
  if(text!==undefined&&text!==null){e.textContent=String(text);} return e;}
function fmt(v){if(typeof v==='number'){if(!isFinite(v))return '—';
  if(Number.isInteger(v))return String(v); const a=Math.abs(v);
  return (a!==0&&(a<1e-3||a>=1e4))?v.toPrecision(3):v.toFixed(4);} return v===null?'—':String(v);}
function facts(list){const dl=el('dl');for(const [k,v] of list||[]){dl.appendChild(el('dt',{},k));
  dl.appendChild(el('dd',{},v));}return dl;}
function sortRows(rows, col, dir){const key=r=>r[col];
  return rows.slice().sort((a,b)=>{const x=key(a),y=key(b);
    const nx=typeof x==='number', ny=typeof y==='number';
    let c = nx&&ny ? x-y : (nx? -1 : ny? 1 : String(x).localeCompare(String(y),undefined,{numeric:true}));
    return dir==='asc'?c:-c;});}
function table(t){const wrap=el('div',{'class':'tablewrap'});const tb=el('table',{id:'table-'+t.id});
  const thead=el('thead');const tr=el('tr');const st=sortState[t.id]||{};
  t.columns.forEach((c,i)=>{const th=el('th',{},c);
    if(st.col===i)th.className='sorted-'+st.dir;
    th.addEventListener('click',()=>{const cur=sortState[t.id]||{};
      sortState[t.id]={col:i,dir:(cur.col===i&&cur.dir==='asc')?'desc':'asc'};
      wrap.replaceWith(table(t));});
    tr.appendChild(th);});
  thead.appendChild(tr);tb.appendChild(thead);const body=el('tbody');
  const rows=st.col===undefined?t.rows:sortRows(t.rows,st.col,st.dir);
  for(const r of rows){const row=el('tr');
    for(const v of r){row.appendChild(el('td',{'class':typeof v==='number'?'num':''},fmt(v)));}
    body.appendChild(row);}
  tb.appendChild(body);wrap.appendChild(tb);return wrap;}
function figure(f, parent){let div=document.getElementById('fig-'+f.id);
  if(!div){div=el('div',{id:'fig-'+f.id,'class':'fig'});parent.appendChild(div);}
  else{parent.appendChild(div);}
  Plotly.react(div,f.data,f.layout,{responsive:true,displaylogo:false});}
function render(page){
  document.title=page.title;
  document.getElementById('title').textContent=page.title;
  const st=page.status||{};const stEl=document.getElementById('status');
  stEl.textContent=st.state||'';stEl.className='status-'+(st.state||'').replace(' ','-');
  document.getElementById('generated').textContent=new Date(page.generated_at*1000).toLocaleString();
  const main=document.getElementById('content');
  const keep={};main.querySelectorAll('.fig').forEach(d=>{keep[d.id]=d;});
  const frag=el('div');
  const ans=page.answer;const a=el('section',{'class':'card answer '+(ans?(ans.found?'found':'none'):'pending'),id:'answer'});
  a.appendChild(el('h2',{},ans?ans.headline:'No answer yet: the run is still going (where it stands: below).'));
  if(ans){a.appendChild(facts(ans.facts));for(const n of ans.notes||[])a.appendChild(el('p',{'class':'note'},n));}
  frag.appendChild(a);
  const s=el('section',{'class':'card',id:'where'});s.appendChild(el('h2',{},'Where the run stands'));
  for(const line of st.lines||[])s.appendChild(el('div',{},line));frag.appendChild(s);
  const nav=el('nav');for(const sec of page.sections){const l=el('a',{href:'#'+sec.id},sec.title);nav.appendChild(l);}
  frag.appendChild(nav);
  const figs=[];
  for(const sec of page.sections){const c=el('section',{'class':'card',id:sec.id});
    c.appendChild(el('h2',{},sec.title));
    if((sec.facts||[]).length)c.appendChild(facts(sec.facts));
    for(const n of sec.notes||[])c.appendChild(el('p',{'class':'note'},n));
    for(const f of sec.figures||[]){const holder=el('div');c.appendChild(holder);figs.push([f,holder]);}
    for(const t of sec.tables||[]){c.appendChild(el('h3',{},t.title+' ('+t.rows.length+')'));c.appendChild(table(t));}
    frag.appendChild(c);}
  main.replaceChildren(...frag.childNodes);
  for(const [f,holder] of figs){if(keep['fig-'+f.id]){holder.appendChild(keep['fig-'+f.id]);}
    figure(f,holder);}
}
window.proxytaskRender=render;
const cfg=JSON.parse(document.getElementById('proxytask-config').textContent);
if(cfg.page){render(cfg.page);}
if(cfg.live){let last=Date.now();const badge=document.getElementById('live');
  async function poll(){try{const r=await fetch('api/page',{cache:'no-store'});
      if(r.ok){render(await r.json());last=Date.now();badge.className='live';badge.textContent='live';}}
    catch(e){}
    if(Date.now()-last>3*cfg.poll_ms){badge.className='live stale';badge.textContent='not updating';}}
  poll();setInterval(poll,cfg.poll_ms);}
})();
